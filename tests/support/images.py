"""Tiny images and bright/dark image datasets for test suites."""

from __future__ import annotations

import io

from PIL import Image

from adapter_base import AnnotationCollection, Dataset, Item, Registry

BRIGHT, DARK = "bright", "dark"


def png_bytes(value: int, size: tuple[int, int] = (8, 8), mode: str = "L") -> bytes:
    """A flat PNG of ``size`` (width, height) with every pixel ``value`` (grey, or grey RGB)."""
    img = Image.new(mode, size, value if mode == "L" else (value, value, value))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def classification_gt(label: str) -> AnnotationCollection:
    """Ground truth: one classification ``label``."""
    gt = AnnotationCollection()
    gt.add_classification(label)
    return gt


def add_shade_items(
    registry: Registry,
    dataset: Dataset,
    n: int,
    *,
    prefix: str,
    subset: str,
    start: int = 0,
    annotate: bool = True,
) -> list[Item]:
    """``n`` flat images alternating bright (200) / dark (40) under ``<prefix>/``, labelled as such."""
    items = []
    for i in range(start, start + n):
        label = BRIGHT if i % 2 == 0 else DARK
        items.append(
            registry.add_item(
                dataset,
                f"{prefix}/{i:04d}.png",
                png_bytes(200 if label == BRIGHT else 40),
                subsets=[subset],
                metadata={"index": i, "label": label},
                annotations=classification_gt(label) if annotate else None,
            )
        )
    return items
