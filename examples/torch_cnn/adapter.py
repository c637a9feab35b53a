"""A small convolutional classifier in PyTorch, written against the public adapter API.

``prepare_item_func`` decodes and resizes on the framework's I/O threads (PIL releases
the GIL) and returns a normalised ``3 x S x S`` float32 array; ``predict`` stacks a batch,
moves it to the device (pinned memory, non-blocking on CUDA) and runs the network under
``torch.inference_mode()``. Works on CPU; ``device: auto`` picks CUDA when there is one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from adapter_base import AnnotationCollection, BaseModelAdapter

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


class SmallCNN(nn.Module):
    """``depth`` blocks of conv-BN-ReLU (stride 2 after the first), global average pooling, a linear head."""

    def __init__(self, num_classes: int, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c_out = 3, width
        for i in range(depth):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=1 if i == 0 else 2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in, c_out = c_out, min(c_out * 2, 512)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def to_input(image: Any, size: int) -> np.ndarray:
    """An ``H x W x 3`` uint8 image (array or PIL) as a normalised ``3 x size x size`` float32 array."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (arr - MEAN) / STD


class TorchCNNAdapter(BaseModelAdapter):
    """Classifies images into the model's labels with ``SmallCNN``."""

    DEFAULT_CONFIGURATION = {
        "input_size": 64,
        "width": 32,
        "depth": 4,
        "epochs": 3,
        "learning_rate": 0.05,
        "train_batch_size": 32,
        "seed": 0,
        "batch_size": 32,
    }

    # --- model --------------------------------------------------------------------------

    def _build(self, labels: list[str]) -> None:
        torch.manual_seed(int(self.configuration["seed"]))
        self.labels = list(labels)
        self.net = SmallCNN(len(self.labels), int(self.configuration["width"]), int(self.configuration["depth"]))
        self.torch_device = torch.device(self.device)
        self.net.to(self.torch_device).eval()
        self.model = self.net

    def load(self, local_path: str, **kwargs: Any) -> None:
        weights = Path(local_path) / "weights.pt"
        labels_file = Path(local_path) / "labels.json"
        if labels_file.exists():
            labels = json.loads(labels_file.read_text())
        else:
            labels = list(self.model_entity.labels) if self.model_entity and self.model_entity.labels else ["0", "1"]
        self._build(labels)
        if weights.exists():
            state = torch.load(weights, map_location=self.torch_device, weights_only=True)
            self.net.load_state_dict(state)

    def save(self, local_path: str, **kwargs: Any) -> None:
        torch.save(self.net.state_dict(), Path(local_path) / "weights.pt")
        (Path(local_path) / "labels.json").write_text(json.dumps(self.labels))

    # --- data ---------------------------------------------------------------------------

    def prepare_item_func(self, item: Any) -> np.ndarray:
        image = super().prepare_item_func(item)  # H x W x 3 uint8, EXIF-aware
        return to_input(image, int(self.configuration["input_size"]))

    def _load_subset(self, subset_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for record_path in sorted((subset_dir / "json").rglob("*.json")):
            record = json.loads(record_path.read_text())
            label = next(a["label"] for a in record["annotations"] if a["type"] == "classification")
            with Image.open(subset_dir / "items" / record["item"]["path"]) as img:
                # EXIF-aware like the default preparation, so training sees what predict sees
                xs.append(to_input(ImageOps.exif_transpose(img), int(self.configuration["input_size"])))
            ys.append(self.labels.index(label))
        if not xs:
            return torch.empty(0), torch.empty(0, dtype=torch.long)
        return torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.long)

    # --- user functions -----------------------------------------------------------------

    def train(self, data_path: str, output_path: str, **kwargs: Any) -> None:
        cfg = self.configuration
        callback = kwargs.get("on_epoch_end_callback")
        x_train, y_train = self._load_subset(Path(data_path) / "train")
        x_val, y_val = self._load_subset(Path(data_path) / "validation")
        opt = torch.optim.SGD(self.net.parameters(), lr=float(cfg["learning_rate"]), momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(int(cfg["seed"]))
        epochs, bs = int(cfg["epochs"]), int(cfg["train_batch_size"])
        for epoch in range(epochs):
            self.net.train()
            order = torch.randperm(len(x_train), generator=gen)
            losses = []
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                x = x_train[idx].to(self.torch_device)
                y = y_train[idx].to(self.torch_device)
                opt.zero_grad()
                loss = loss_fn(self.net(x), y)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            self.net.eval()
            metrics = {"loss": round(float(np.mean(losses)) if losses else 0.0, 4)}
            if len(x_val):
                with torch.inference_mode():
                    pred = self.net(x_val.to(self.torch_device)).argmax(1).cpu()
                metrics["val_accuracy"] = round(float((pred == y_val).float().mean()), 4)
            if callback:
                callback(epoch, epochs, metrics)

    def predict(self, batch: Any, **kwargs: Any) -> list[AnnotationCollection]:
        x = torch.from_numpy(np.stack(list(batch)))
        if self.torch_device.type == "cuda":
            x = x.pin_memory().to(self.torch_device, non_blocking=True)
        with torch.inference_mode():
            probs = torch.softmax(self.net(x), dim=1).float().cpu().numpy()
        out = []
        for row in probs:
            best = int(row.argmax())
            coll = AnnotationCollection()
            coll.add_classification(self.labels[best], confidence=float(row[best]))
            out.append(coll)
        return out
