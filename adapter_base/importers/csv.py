"""A CSV list of ``path,label[,subset]`` rows (a header row naming those columns is optional).

Paths are relative to the CSV's folder (or to ``--images DIR``) and must stay inside it.
An empty label leaves the item without ground truth; subset names may be aliases
(``val`` -> ``validation``). Files that are missing or not media (not images, in a list of images) are skipped and reported.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..entities import AnnotationCollection
from ..errors import ValidationError
from .plan import ImportPlan, PlannedItem, keep_media
from .subsets import subset_alias

COLUMNS = ("path", "label", "subset")


def _columns(first: list[str]) -> dict[str, int] | None:
    """Column positions from a header row, or None when the first row is data."""
    names = [c.strip().lower() for c in first]
    if "path" not in names:
        return None
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise ValidationError("import", "CSV header", f"unknown column(s) {unknown}: expected {', '.join(COLUMNS)}")
    return {name: names.index(name) for name in COLUMNS if name in names}


def plan_csv(table: Path, *, base: Path | None = None, split: tuple[float, float, float] | None = None, seed: int = 0) -> ImportPlan:
    """What importing the rows of ``table`` would write; nothing is written."""
    if not table.is_file():
        raise FileNotFoundError(f"CSV file {str(table)!r} does not exist")
    base = (base or table.parent).resolve()
    with open(table, newline="", encoding="utf-8-sig") as fh:
        rows = [(n, row) for n, row in enumerate(csv.reader(fh), start=1) if any(cell.strip() for cell in row)]
    columns = _columns(rows[0][1]) if rows else None
    if columns is not None:
        rows = rows[1:]
    columns = columns or {"path": 0, "label": 1, "subset": 2}
    seen: dict[str, int] = {}
    items: list[PlannedItem] = []
    skipped: list[tuple[str, str]] = []
    for n, row in rows:
        where = f"{table.name}:{n}"
        if len(row) > len(COLUMNS) or len(row) <= max(columns.get("label", 0), columns["path"]):
            raise ValidationError("import", where, f"expected path,label[,subset], got {row!r}")
        cell = {name: (row[i].strip() if i < len(row) else "") for name, i in columns.items()}
        raw = cell["path"]
        target = (base / raw).resolve()
        if base not in target.parents:
            raise ValidationError("import", where, f"path {raw!r} is not inside {base}")
        rel = target.relative_to(base).as_posix()
        if rel in seen:
            raise ValidationError("import", where, f"{rel!r} is listed twice (lines {seen[rel]} and {n}); one row per file")
        seen[rel] = n
        if not target.is_file():
            skipped.append((rel, f"listed on line {n} but not found"))
            continue
        gt = None
        if cell.get("label"):
            gt = AnnotationCollection()
            gt.add_classification(cell["label"])
        subset = cell.get("subset", "")
        subsets = [subset_alias(subset) or subset] if subset else []
        items.append(PlannedItem(rel, target, subsets, gt))
    media, not_media = keep_media(it.path for it in items)
    kept = set(media)
    items = [it for it in items if it.path in kept]
    skipped.extend((rel, f"{why}, line {seen[rel]}") for rel, why in not_media)
    labels = sorted({label for it in items for label in it.labels})
    plan = ImportPlan(str(table.resolve()), "csv", items, labels, sorted(skipped))
    plan.split_unassigned(split, seed)
    return plan
