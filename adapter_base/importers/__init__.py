"""Getting data in: plan an import from a folder, COCO JSON, YOLO txt or a CSV list, then write it.

``plan_import`` reads the source and returns an ``ImportPlan`` (items, labels, skipped
files, a summary) without writing anything; ``apply_plan`` writes it into a dataset,
resumably and idempotently (importing the same source again adds only what is new).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ValidationError
from .apply import IMPORT_KEY, DatasetImportError, ImportResult, OnConflict, apply_plan
from .coco import find_coco, plan_coco
from .csv import plan_csv
from .folder import import_directory, plan_folder, scan_directory
from .plan import ImportPlan, PlannedItem
from .subsets import KNOWN_SUBSETS, SUBSET_ALIASES, parse_split
from .yolo import is_yolo, plan_yolo

FORMATS: tuple[str, ...] = ("auto", "folder", "coco", "yolo", "csv")


def detect_format(source: Path) -> str:
    """``csv`` for a ``.csv`` file; for a folder ``yolo`` (class names and labels/), ``coco`` (a COCO JSON), else ``folder``."""
    if source.is_file() and source.suffix.lower() == ".csv":
        return "csv"
    if not source.is_dir():
        raise FileNotFoundError(f"dataset source {str(source)!r} is neither 'digits' nor a directory (nor a .csv file)")
    if is_yolo(source):
        return "yolo"
    if find_coco(source) is not None:
        return "coco"
    return "folder"


def plan_import(
    source: Path | None,
    *,
    format: str = "auto",
    images: Path | None = None,
    annotations: Path | None = None,
    split: tuple[float, float, float] | None = None,
    seed: int = 0,
) -> ImportPlan:
    """Read ``source`` (or ``images`` + ``annotations`` for COCO) as ``format`` and plan its import."""
    if format not in FORMATS:
        raise ValidationError("import", "--format", f"expected one of {', '.join(FORMATS)}, got {format!r}")
    if source is None and format in ("auto", "coco") and images is not None and annotations is not None:
        return plan_coco(images, annotations, split=split, seed=seed)
    if source is None:
        raise ValidationError("import", "source", "give a folder or CSV file to import (or --format coco --images DIR --annotations FILE)")
    fmt = detect_format(source) if format == "auto" else format
    if fmt == "coco":
        if images is not None and annotations is not None:
            return plan_coco(images, annotations, split=split, seed=seed)
        found = find_coco(source) if source.is_dir() else None
        if found is None and annotations is None:
            raise ValidationError("import", "--annotations", f"no COCO annotations file found in {source}: pass --annotations FILE")
        found_images, found_annotations = found or (source, annotations)
        return plan_coco(images or found_images, annotations or found_annotations, split=split, seed=seed)
    if fmt == "yolo":
        return plan_yolo(source, split=split, seed=seed)
    if fmt == "csv":
        return plan_csv(source, base=images, split=split, seed=seed)
    return plan_folder(source, split=split, seed=seed)


__all__ = [
    "FORMATS",
    "IMPORT_KEY",
    "KNOWN_SUBSETS",
    "SUBSET_ALIASES",
    "DatasetImportError",
    "ImportPlan",
    "ImportResult",
    "OnConflict",
    "PlannedItem",
    "apply_plan",
    "detect_format",
    "import_directory",
    "parse_split",
    "plan_coco",
    "plan_csv",
    "plan_folder",
    "plan_import",
    "plan_yolo",
    "scan_directory",
]
