"""Adapters and datasets of the journey tests, importable by the CLI as ``journey_support:<Class>``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from adapter_base import AnnotationCollection, BaseModelAdapter, Dataset, Registry
from support.images import BRIGHT, DARK, add_shade_items


def shades(registry: Registry, name: str = "shades", sizes: dict[str, int] | None = None, labels: list[str] | None = None) -> Dataset:
    """Bright/dark images in the given subsets (default train 6, validation 4, test 4)."""
    ds = registry.create_dataset(name, labels=labels or [BRIGHT, DARK])
    start = 0
    for subset, n in (sizes or {"train": 6, "validation": 4, "test": 4}).items():
        add_shade_items(registry, ds, n, prefix=subset, subset=subset, start=start)
        start += n
    return ds


class StackingAdapter(BaseModelAdapter):
    """Learns a brightness threshold; ``predict`` stacks the whole batch into one array, as vectorised
    models do, so a single input that is not an image (a text file's ``str``) makes the call raise."""

    DEFAULT_CONFIGURATION = {"batch_size": 16}

    def load(self, local_path, **kwargs):
        weights = Path(local_path) / "threshold.json"
        self.model = json.loads(weights.read_text()) if weights.exists() else 0.0

    def save(self, local_path, **kwargs):
        Path(local_path, "threshold.json").write_text(json.dumps(self.model))

    def train(self, data_path, output_path, **kwargs):
        self.model = 120.0
        kwargs["on_epoch_end_callback"](0, 1, {"loss": 0.1})

    def predict(self, batch, **kwargs):
        pause = float(os.environ.get("JOURNEY_PREDICT_PAUSE_S") or 0)
        if pause:  # a slow model, for the interruption tests: say where it runs, then take its time
            Path(os.environ["JOURNEY_MARKER"]).write_text(str(os.getpid()))
            time.sleep(pause)
        stacked = np.stack([np.asarray(x, dtype=float) for x in batch])  # raises on a str among arrays
        out = []
        for image in stacked:
            coll = AnnotationCollection()
            coll.add_classification(BRIGHT if image.mean() >= self.model else DARK, confidence=0.9)
            out.append(coll)
        return out


class PretrainedAdapter(StackingAdapter):
    """Predicts well untrained (its ``load`` would fetch pretrained weights)."""

    PREDICTS_UNTRAINED = True

    def load(self, local_path, **kwargs):
        self.model = 120.0


class BrokenAdapter(StackingAdapter):
    """Every ``predict`` call raises."""

    def predict(self, batch, **kwargs: Any):
        raise RuntimeError("weights file is corrupt")
