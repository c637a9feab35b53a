"""A synthetic image dataset for the PyTorch example: noisy images whose colour is the label."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from adapter_base import AnnotationCollection, Dataset, Registry

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def colour_png(label: str, size: int, seed: int) -> bytes:
    """A ``size`` x ``size`` RGB PNG: the label's colour with a gradient and noise."""
    rng = np.random.default_rng(seed)
    base = np.array(COLOURS[label], dtype=np.int16)
    y, x = np.mgrid[0:size, 0:size]
    grad = ((x + y) * 40 // max(1, 2 * size - 2)).astype(np.int16)[..., None]
    img = np.clip(base + grad + rng.integers(-30, 31, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def make_colours(registry: Registry, name: str, n: int, *, size: int = 64, splits: dict[str, float] | None = None, seed: int = 0) -> Dataset:
    """``n`` items ``<subset>/<i>.png`` labelled with their colour, split train/validation/test."""
    splits = splits or {"train": 0.6, "validation": 0.2, "test": 0.2}
    labels = list(COLOURS)
    ds = registry.create_dataset(name, labels=labels)
    bounds, acc = [], 0.0
    for subset, frac in splits.items():
        acc += frac
        bounds.append((subset, acc))

    def add(i: int) -> None:
        frac = (i + 0.5) / n
        subset = next(s for s, b in bounds if frac <= b + 1e-9)
        label = labels[i % len(labels)]
        gt = AnnotationCollection()
        gt.add_classification(label)
        registry.add_item(ds, f"{subset}/{i:06d}.png", colour_png(label, size, seed + i), subsets=[subset], annotations=gt, item_id=f"{i:08d}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(add, range(n)))
    return ds
