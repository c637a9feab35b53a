"""Small real adapters and data builders shared by the core tests.

Importable as ``core_support`` (pytest puts ``tests/core`` on ``sys.path``), so the
CLI can load ``core_support:BrightnessAdapter`` by import path as a user's adapter.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from PIL import Image

from adapter_base import AnnotationCollection, BaseModelAdapter, Dataset, Item, ObjectStore, Registry
from support.images import BRIGHT, DARK, add_shade_items, classification_gt, png_bytes  # noqa: F401 - the core tests import these from here


# --------------------------------------------------------------------------- images


def brightness_dataset(registry: Registry, name: str = "shades", sizes: dict[str, int] | None = None) -> Dataset:
    """A dataset of bright/dark images in the given subsets (default train 6, validation 4, test 4)."""
    ds = registry.create_dataset(name, labels=[BRIGHT, DARK])
    start = 0
    for subset, n in (sizes or {"train": 6, "validation": 4, "test": 4}).items():
        add_shade_items(registry, ds, n, prefix=subset, subset=subset, start=start)
        start += n
    return ds


# --------------------------------------------------------------------------- adapters


class BrightnessAdapter(BaseModelAdapter):
    """Labels an image ``bright`` when its mean pixel value is above a learned threshold.

    Records what the framework hands it so tests can check the calls.
    """

    DEFAULT_CONFIGURATION = {"threshold": 128.0, "epochs": 3}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.calls: dict[str, list[Any]] = {"load": [], "save": [], "train": [], "predict": [], "convert": []}
        self.batch_sizes: list[int] = []
        super().__init__(*args, **kwargs)

    def load(self, local_path, **kwargs):
        self.calls["load"].append((local_path, dict(kwargs), sorted(p.name for p in Path(local_path).iterdir())))
        weights = Path(local_path) / "weights.json"
        if weights.exists():
            self.model = json.loads(weights.read_text())
        else:
            self.model = {"threshold": float(self.configuration["threshold"])}

    def save(self, local_path, **kwargs):
        self.calls["save"].append((local_path, dict(kwargs)))
        Path(local_path, "weights.json").write_text(json.dumps(self.model))

    def convert_from_dataset(self, data_path, **kwargs):
        self.calls["convert"].append((data_path, dict(kwargs)))

    def train(self, data_path, output_path, **kwargs):
        self.calls["train"].append((data_path, output_path, dict(kwargs)))
        means: dict[str, list[float]] = {BRIGHT: [], DARK: []}
        train_dir = Path(data_path) / "train"
        for record_path in sorted((train_dir / "json").rglob("*.json")):
            record = json.loads(record_path.read_text())
            label = record["annotations"][0]["label"]
            pixels = np.asarray(Image.open(train_dir / "items" / record["item"]["path"]).convert("L"), dtype=float)
            means[label].append(float(pixels.mean()))
        threshold = (np.mean(means[BRIGHT]) + np.mean(means[DARK])) / 2
        epochs = int(self.configuration["epochs"])
        callback = kwargs.get("on_epoch_end_callback")
        for epoch in range(epochs):
            self.model = {"threshold": float(threshold)}
            if callback:
                callback(epoch, epochs, {"loss": round(1.0 / (epoch + 1), 4)})

    def predict(self, batch, **kwargs):
        self.calls["predict"].append(kwargs)
        self.batch_sizes.append(len(batch))
        out = []
        for image in batch:
            mean = float(np.asarray(image, dtype=float).mean())
            label = BRIGHT if mean >= self.model["threshold"] else DARK
            coll = AnnotationCollection()
            coll.add_classification(label, confidence=0.9)
            out.append(coll)
        return out


class MetadataAdapter(BaseModelAdapter):
    """Predicts whatever ``item.metadata`` says, so a test decides each item's fate by hand.

    ``pred``: the classification label to return (with ``confidence``, default 0.8, which
    may be invalid on purpose; a string is passed through ``float``, for ``"nan"``/``"inf"``); ``boxes``: ``[{"box": [l, t, r, b], "label", "confidence"}]``.
    Batch-wide switches: ``raise`` (predict raises), ``memory_over`` (MemoryError when the
    batch is larger), ``hang`` (blocks until ``release`` is set, at most 30 s), ``short``
    (one result too few), ``not_a_list`` (returns a dict), ``strings`` (a str per item).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.batch_sizes: list[int] = []
        self.seen_items: list[list[str]] = []
        self.release = threading.Event()
        super().__init__(*args, **kwargs)

    def load(self, local_path, **kwargs):
        self.model = "metadata"

    def save(self, local_path, **kwargs):
        Path(local_path, "model.txt").write_text("metadata")

    def predict(self, batch, **kwargs):
        items: list[Item] = kwargs["items"]
        assert len(items) == len(batch)
        self.batch_sizes.append(len(batch))
        self.seen_items.append([it.id for it in items])
        flags = {key for it in items for key, value in it.metadata.items() if value is True}
        limit = min((it.metadata.get("memory_over", 10**9) for it in items), default=10**9)
        if len(batch) > limit:
            raise MemoryError(f"batch of {len(batch)} does not fit")
        if "raise" in flags:
            raise RuntimeError("model exploded on purpose")
        if "hang" in flags:
            self.release.wait(30)
        if "not_a_list" in flags:
            return {"not": "a list"}
        if "strings" in flags:
            return ["cat" for _ in items]
        out = []
        for it in items:
            coll = AnnotationCollection()
            for box in it.metadata.get("boxes", []):
                coll.add_box(*box["box"], box["label"], confidence=box.get("confidence", 0.9))
            if "pred" in it.metadata:
                coll.add_classification(it.metadata["pred"], confidence=0.5)
                # set afterwards, past the builder's check, as a careless adapter might
                conf = it.metadata.get("confidence", 0.8)
                coll.annotations[-1].model.confidence = float(conf) if isinstance(conf, str) else conf
            out.append(coll)
        if "short" in flags:
            out = out[:-1]
        return out


def prediction_sets(registry: Registry, items: Iterable[Item], model_id: str) -> dict[str, Any]:
    """``{item_id: PredictionSet or None}`` for ``model_id``."""
    return {it.id: registry.get_predictions(it, model_id) for it in items}


# --------------------------------------------------------------------------- instrumentation


def instrument(store: ObjectStore, **methods: Callable[..., Any]) -> ObjectStore:
    """Turn ``store`` into an instance of a thin subclass of its own class with ``methods``.

    Each method receives ``(base, self, *args)`` where ``base`` is the original class, so it
    can count or fail calls and otherwise defer to the real backend.
    """
    base = type(store)
    body = {name: (lambda fn: lambda self, *a, **kw: fn(base, self, *a, **kw))(fn) for name, fn in methods.items()}
    store.__class__ = type(f"Instrumented{base.__name__}", (base,), body)
    return store


class Counter:
    """A thread-safe call log."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._lock = threading.Lock()

    def add(self, value: Any) -> int:
        with self._lock:
            self.calls.append(value)
            return len(self.calls)
