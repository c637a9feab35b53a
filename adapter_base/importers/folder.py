"""A folder of files: ``[<subset>/]<label>/<file>`` gives each file its subset and ground-truth label.

Subset folders may be named by an alias (``val``, ``valid`` -> ``validation``); a folder
without them can be split with ``--split``. Only media files are imported (images, or
text when the folder holds no image); the rest is skipped and reported. Nothing outside
the folder is ever read.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..entities import AnnotationCollection
from ..registry import Registry
from .apply import ImportResult, OnConflict, apply_plan
from .plan import ImportPlan, PlannedItem, keep_media
from .subsets import subset_alias


def scan_directory(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The files under ``root`` to import (sorted relative POSIX paths) and the entries skipped, with why.

    Hidden files and folders (``.git``, ``.DS_Store``) are skipped, and so is every
    symbolic link that leads out of ``root`` or to a folder: nothing outside the folder
    is ever read. A link to a file inside it is imported.
    """
    top = root.resolve()
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    pending = [(os.fspath(root), "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                is_dir = entry.is_dir(follow_symlinks=False)
                if entry.name.startswith("."):
                    skipped.append((rel + "/" if is_dir else rel, "hidden"))
                elif entry.is_symlink():
                    target = Path(entry.path).resolve()
                    if top not in target.parents:
                        skipped.append((rel, "symbolic link to outside the folder"))
                    elif not target.is_file():
                        skipped.append((rel, "symbolic link to a folder or to nothing"))
                    else:
                        files.append(rel)
                elif is_dir:
                    pending.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    files.append(rel)
                else:
                    skipped.append((rel, "not a regular file"))
    return sorted(files), sorted(skipped)


def subset_and_label(rel: str) -> tuple[list[str], str | None]:
    """``[<subset>/]<label>/<file>``: the subset (when the first folder names one) and the label (if any)."""
    parts = rel.split("/")
    subset = subset_alias(parts[0]) if len(parts) > 1 else None
    rest = parts[1:] if subset else parts
    return ([subset] if subset else []), (rest[0] if len(rest) > 1 else None)


def plan_folder(root: Path, *, split: tuple[float, float, float] | None = None, seed: int = 0) -> ImportPlan:
    """What importing ``root`` would write; nothing is written."""
    if not root.is_dir():
        raise FileNotFoundError(f"dataset source {str(root)!r} is not a directory")
    files, skipped = scan_directory(root)
    media, not_media = keep_media(files)
    items: list[PlannedItem] = []
    for rel in media:
        subsets, label = subset_and_label(rel)
        gt = None
        if label is not None:
            gt = AnnotationCollection()
            gt.add_classification(label)
        items.append(PlannedItem(rel, root / rel, subsets, gt))
    labels = sorted({label for it in items for label in it.labels})
    plan = ImportPlan(str(root.resolve()), "folder", items, labels, sorted(skipped + not_media))
    plan.split_unassigned(split, seed)
    return plan


def import_directory(
    registry: Registry,
    root: Path,
    name: str,
    *,
    split: tuple[float, float, float] | None = None,
    seed: int = 0,
    on_conflict: OnConflict = "fail",
    keep_broken: bool = False,
) -> ImportResult:
    """Import every media file under ``root`` into dataset ``name`` (see ``plan_folder`` and ``apply_plan``)."""
    return apply_plan(registry, plan_folder(Path(root), split=split, seed=seed), name, on_conflict=on_conflict, keep_broken=keep_broken)

