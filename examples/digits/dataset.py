"""Import scikit-learn's bundled handwritten digits (1,797 8x8 images) as a dataset of PNG items."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from adapter_base import AnnotationCollection, Dataset, Registry

SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8x8 digit (values 0..16) as a grayscale PNG."""
    img = Image.fromarray((pixels.reshape(8, 8) * (255 / 16)).round().astype(np.uint8), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
    """A seeded random train / validation / test split of ``range(n)``."""
    order = np.random.default_rng(seed).permutation(n)
    out, start = {}, 0
    for i, (name, frac) in enumerate(SPLITS):
        stop = n if i == len(SPLITS) - 1 else start + int(round(frac * n))
        out[name] = np.sort(order[start:stop])
        start = stop
    return out


def import_digits(registry: Registry, name: str = "digits", *, seed: int = 0, limit: int | None = None) -> Dataset:
    """Create dataset ``name`` with every digit as ``<split>/<index>.png`` and its label as ground truth."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = len(digits.target) if limit is None else min(limit, len(digits.target))
    labels = [str(d) for d in range(10)]
    ds = registry.create_dataset(name, labels=labels, metadata={"source": "sklearn.datasets.load_digits", "seed": seed})

    def add(index: int, subset: str) -> None:
        gt = AnnotationCollection()
        gt.add_classification(str(int(digits.target[index])))
        registry.add_item(
            ds,
            f"{subset}/{index:04d}.png",
            png_bytes(digits.images[index]),
            mimetype="image/png",
            subsets=[subset],
            metadata={"index": int(index)},
            annotations=gt,
        )

    jobs = [(int(i), subset) for subset, idx in split_indices(n, seed).items() for i in idx]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda job: add(*job), jobs))
    return ds
