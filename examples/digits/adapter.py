"""A digits classifier adapter: a one-hidden-layer NumPy MLP trained with SGD.

Written the way a user would write one, against the public API only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from adapter_base import AnnotationCollection, BaseModelAdapter


class DigitsAdapter(BaseModelAdapter):
    """Classifies 8x8 grayscale digits; any image is converted to 8x8 grayscale first."""

    DEFAULT_CONFIGURATION = {
        "hidden_units": 64,
        "epochs": 40,
        "learning_rate": 0.1,
        "momentum": 0.9,
        "train_batch_size": 32,
        "weight_decay": 1e-4,
        "seed": 0,
    }

    # --- model -------------------------------------------------------------------------

    def _init_weights(self, labels: list[str]) -> None:
        rng = np.random.default_rng(self.configuration["seed"])
        h = int(self.configuration["hidden_units"])
        self.labels = labels
        self.params = {
            "w1": rng.normal(0, np.sqrt(2 / 64), (64, h)),
            "b1": np.zeros(h),
            "w2": rng.normal(0, np.sqrt(1 / h), (h, len(labels))),
            "b2": np.zeros(len(labels)),
        }

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hidden = np.maximum(0, x @ self.params["w1"] + self.params["b1"])
        logits = hidden @ self.params["w2"] + self.params["b2"]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return hidden, probs / probs.sum(axis=1, keepdims=True)

    @staticmethod
    def to_features(image: np.ndarray) -> np.ndarray:
        """An image array (H x W x 3 RGB or H x W grey, values 0-255) as 64 floats in [0, 1].

        Training and prediction both come through here, so a colour image gets the same grey
        (PIL's ``L``) whichever path it takes.
        """
        gray = Image.fromarray(np.asarray(image).astype(np.uint8)).convert("L")
        if gray.size != (8, 8):
            gray = gray.resize((8, 8), Image.BILINEAR)
        return np.asarray(gray, dtype=float).reshape(64) / 255.0

    @staticmethod
    def read_image(path: Path) -> np.ndarray:
        """A downloaded image file as the RGB array the framework's default preparation gives ``predict``."""
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))

    # --- user functions ---------------------------------------------------------------

    def load(self, local_path, **kwargs):
        weights = Path(local_path) / "weights.npz"
        if weights.exists():
            with np.load(weights) as data:
                self.params = {k: data[k] for k in ("w1", "b1", "w2", "b2")}
            self.labels = json.loads((Path(local_path) / "labels.json").read_text())
        else:
            self._init_weights(list(self.model_entity.labels) or [str(d) for d in range(10)])
        self.model = self.params

    def save(self, local_path, **kwargs):
        np.savez(os.path.join(local_path, "weights.npz"), **self.params)
        Path(local_path, "labels.json").write_text(json.dumps(self.labels))

    def _load_subset(self, subset_dir: Path) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for record_path in sorted((subset_dir / "json").rglob("*.json")):
            record = json.loads(record_path.read_text())
            label = next(a["label"] for a in record["annotations"] if a["type"] == "classification")
            xs.append(self.to_features(self.read_image(subset_dir / "items" / record["item"]["path"])))
            ys.append(self.labels.index(label))
        return np.array(xs), np.array(ys)

    def train(self, data_path, output_path, **kwargs):
        cfg = self.configuration
        callback = kwargs.get("on_epoch_end_callback")
        x_train, y_train = self._load_subset(Path(data_path) / "train")
        x_val, y_val = self._load_subset(Path(data_path) / "validation")
        velocity = {k: np.zeros_like(v) for k, v in self.params.items()}
        start_epoch = 0
        checkpoint_dir = kwargs.get("checkpoint_dir")
        resume = kwargs.get("resume_checkpoint")
        if resume and Path(resume, "checkpoint.npz").exists():
            with np.load(Path(resume, "checkpoint.npz")) as data:
                self.params = {k: data[k] for k in ("w1", "b1", "w2", "b2")}
                start_epoch = int(data["epoch"]) + 1
        rng = np.random.default_rng(cfg["seed"] + start_epoch)
        epochs, bs, lr = int(cfg["epochs"]), int(cfg["train_batch_size"]), float(cfg["learning_rate"])
        for epoch in range(start_epoch, epochs):
            order = rng.permutation(len(x_train))
            losses = []
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                x, y = x_train[idx], y_train[idx]
                hidden, probs = self._forward(x)
                losses.append(-np.log(probs[np.arange(len(y)), y] + 1e-12).mean())
                grad = probs
                grad[np.arange(len(y)), y] -= 1
                grad /= len(y)
                grads = {"w2": hidden.T @ grad, "b2": grad.sum(0)}
                back = (grad @ self.params["w2"].T) * (hidden > 0)
                grads.update(w1=x.T @ back, b1=back.sum(0))
                for k in self.params:
                    velocity[k] = cfg["momentum"] * velocity[k] - lr * (grads[k] + cfg["weight_decay"] * self.params[k])
                    self.params[k] = self.params[k] + velocity[k]
            val_acc = float((self._forward(x_val)[1].argmax(1) == y_val).mean())
            if checkpoint_dir:
                np.savez(Path(checkpoint_dir, "checkpoint.npz"), epoch=epoch, **self.params)
            if callback:
                callback(epoch, epochs, {"loss": round(float(np.mean(losses)), 4), "val_accuracy": round(val_acc, 4)})
        self.model = self.params

    def predict(self, batch, **kwargs):
        features = np.stack([self.to_features(image) for image in batch])
        _, probs = self._forward(features)
        results = []
        for row in probs:
            best = int(row.argmax())
            collection = AnnotationCollection()
            collection.add_classification(self.labels[best], confidence=float(row[best]))
            results.append(collection)
        return results
