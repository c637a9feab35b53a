"""A colour-blob box detector: learns each label's colour from its boxes, finds blobs of that colour.

NumPy and Pillow only. ``train`` averages the pixels in the middle of every ground-truth box
per label (colour mean and spread) and the smallest box area; ``predict`` marks the pixels
close to each label's colour, groups them into 4-connected blobs and returns one box per
blob, its confidence growing with the blob's size and fill.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from adapter_base import AnnotationCollection, BaseModelAdapter


def connected_components(mask: np.ndarray) -> np.ndarray:
    """Blob ids (0 = background) of a boolean mask, 4-connected, by propagating the smallest index."""
    h, w = mask.shape
    big = h * w + 1
    ids = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), big)
    while True:
        padded = np.pad(ids, 1, constant_values=big)
        neighbours = np.minimum.reduce([ids, padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        new = np.where(mask, neighbours, big)
        if np.array_equal(new, ids):
            break
        ids = new
    return np.where(mask, ids, 0)


class ShapesAdapter(BaseModelAdapter):
    """Finds coloured shapes; one learned colour per label."""

    DEFAULT_CONFIGURATION = {"spread": 3.0, "min_distance": 40.0}

    def load(self, local_path, **kwargs):
        path = Path(local_path) / "colours.json"
        self.model = json.loads(path.read_text()) if path.exists() else {"labels": {}, "min_area": 16}

    def save(self, local_path, **kwargs):
        Path(local_path, "colours.json").write_text(json.dumps(self.model, indent=1))

    def train(self, data_path, output_path, **kwargs):
        pixels: dict[str, list[np.ndarray]] = {}
        areas = []
        subset = Path(data_path) / "train"
        for record_path in sorted((subset / "json").rglob("*.json")):
            record = json.loads(record_path.read_text())
            with Image.open(subset / "items" / record["item"]["path"]) as img:  # EXIF-aware, as predict sees it
                image = np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=float)
            for ann in record["annotations"]:
                if ann["type"] != "box":
                    continue
                c = ann["coordinates"]
                left, top, right, bottom = c["left"], c["top"], c["right"], c["bottom"]
                areas.append((right - left) * (bottom - top))
                # the middle half of the box: inside an ellipse as well as a rectangle
                x0, x1 = int(left + (right - left) / 4), int(np.ceil(right - (right - left) / 4))
                y0, y1 = int(top + (bottom - top) / 4), int(np.ceil(bottom - (bottom - top) / 4))
                pixels.setdefault(ann["label"], []).append(image[y0:y1, x0:x1].reshape(-1, 3))
        learned = {}
        for label, chunks in sorted(pixels.items()):
            values = np.concatenate(chunks)
            learned[label] = {"mean": values.mean(0).round(2).tolist(), "std": float(values.std(0).mean().round(2))}
        self.model = {"labels": learned, "min_area": max(4, int(min(areas) / 4)) if areas else 16}
        callback = kwargs.get("on_epoch_end_callback")
        if callback:
            callback(0, 1, {"labels_learned": len(learned), "boxes": len(areas)})

    def predict(self, batch, **kwargs):
        spread = float(self.configuration["spread"])
        floor = float(self.configuration["min_distance"])
        results = []
        for image in batch:
            pixels = np.asarray(image, dtype=float)
            collection = AnnotationCollection()
            for label, colour in self.model["labels"].items():
                distance = np.linalg.norm(pixels - np.asarray(colour["mean"]), axis=2)
                blobs = connected_components(distance < max(floor, spread * colour["std"]))
                for blob in np.unique(blobs[blobs > 0]):
                    ys, xs = np.nonzero(blobs == blob)
                    if len(xs) < self.model["min_area"]:
                        continue
                    left, top, right, bottom = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
                    fill = len(xs) / ((right - left) * (bottom - top))
                    confidence = fill * len(xs) / (len(xs) + self.model["min_area"])
                    collection.add_box(left, top, right, bottom, label, confidence=float(np.clip(confidence, 0.0, 1.0)))
            results.append(collection)
        return results
