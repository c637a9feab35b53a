"""YOLO txt labels: ``images/.../<name>.<ext>`` with ``labels/.../<name>.txt`` lines ``class cx cy w h`` (normalized).

Class names come from ``data.yaml`` (``names`` as a list or an ``{id: name}`` mapping) or
``classes.txt`` (one per line). Both layouts are read: ``images/<subset>/`` with
``labels/<subset>/`` and ``<subset>/images/`` with ``<subset>/labels/``. An image without
a label file has no objects. Boxes become pixels with the image's width and height,
which are recorded in ``item.metadata``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..entities import AnnotationCollection
from ..errors import ValidationError
from .folder import scan_directory
from .plan import ImportPlan, PlannedItem, keep_media
from .subsets import subset_alias
from .verify import image_size

NAME_FILES = ("data.yaml", "data.yml", "classes.txt")
#: Ignored-count key of label files whose image has no readable size (their boxes are in fractions of it).
UNREAD_LABELS = "label files of images whose size cannot be read"


def read_names(root: Path) -> list[str] | None:
    """The class names of a YOLO folder (``data.yaml`` or ``classes.txt``), None when it has neither."""
    for name in NAME_FILES:
        path = root / name
        if not path.is_file():
            continue
        if name == "classes.txt":
            return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            try:
                ordered = sorted((int(k), str(v)) for k, v in names.items())
            except (TypeError, ValueError):
                raise ValidationError("import", f"{name} names", f"expected class ids 0..n-1 as keys, got {list(names)}") from None
            if [k for k, _ in ordered] != list(range(len(ordered))):
                raise ValidationError("import", f"{name} names", f"expected class ids 0..{len(ordered) - 1}, got {[k for k, _ in ordered]}")
            return [v for _, v in ordered]
        if isinstance(names, list) and all(isinstance(v, (str, int)) for v in names):
            return [str(v) for v in names]
        raise ValidationError("import", f"{name} names", f"expected a list of class names or an {{id: name}} mapping, got {names!r}")
    return None


def is_yolo(root: Path) -> bool:
    """True when ``root`` has class names and a ``labels`` folder (at the top or under a subset folder)."""
    if not any((root / n).is_file() for n in NAME_FILES):
        return False
    return (root / "labels").is_dir() or any((p / "labels").is_dir() for p in root.iterdir() if p.is_dir())


def _label_path(rel: str) -> str | None:
    """The label file of an image: its last ``images`` folder replaced by ``labels``, suffix ``.txt``."""
    parts = rel.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return str(Path(*parts).with_suffix(".txt").as_posix())
    return None


def _boxes(path: Path, rel: str, names: list[str], width: int, height: int) -> AnnotationCollection:
    gt = AnnotationCollection()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise ValidationError("import", f"{rel}:{n}", f"expected 'class cx cy w h' (5 fields), got {len(fields)}: {line.strip()!r}")
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise ValidationError("import", f"{rel}:{n}", f"expected an integer class and four numbers, got {line.strip()!r}") from None
        if not 0 <= cls < len(names):
            raise ValidationError("import", f"{rel}:{n}", f"class {cls} is not among the {len(names)} class names")
        if not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
            raise ValidationError("import", f"{rel}:{n}", f"coordinates must be normalized to [0, 1], got {line.strip()!r}")
        gt.add_box((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height, names[cls])
    return gt


def plan_yolo(root: Path, *, split: tuple[float, float, float] | None = None, seed: int = 0) -> ImportPlan:
    """What importing a YOLO folder would write; nothing is written."""
    if not root.is_dir():
        raise FileNotFoundError(f"YOLO folder {str(root)!r} is not a directory")
    names = read_names(root)
    if names is None:
        raise ValidationError("import", "names", f"{root} has no data.yaml or classes.txt naming the classes")
    files, skipped = scan_directory(root)
    label_files = {rel for rel in files if rel.endswith(".txt") and "labels" in rel.split("/")[:-1]}
    used: set[str] = set()
    media, rest = keep_media(files, "image")
    skipped = skipped + [(rel, why) for rel, why in rest if rel not in label_files and rel not in NAME_FILES]
    items: list[PlannedItem] = []
    ignored: dict[str, int] = {}
    for rel in media:
        label_rel = _label_path(rel)
        if label_rel is None:
            skipped.append((rel, "not under an images/ folder"))
            continue
        size = image_size(root / rel)
        used.add(label_rel)
        subset = next((subset_alias(p) for p in rel.split("/")[:-1] if subset_alias(p)), None)
        if isinstance(size, str):  # skipped when written, or kept without its boxes (they need its size) by --keep-broken
            items.append(PlannedItem(rel, root / rel, [subset] if subset else [], AnnotationCollection(), broken=size))
            if label_rel in label_files:
                ignored[UNREAD_LABELS] = ignored.get(UNREAD_LABELS, 0) + 1
            continue
        width, height = size
        gt = _boxes(root / label_rel, label_rel, names, width, height) if label_rel in label_files else AnnotationCollection()
        items.append(PlannedItem(rel, root / rel, [subset] if subset else [], gt, {"width": width, "height": height}))
    skipped.extend((rel, "label file without an image") for rel in sorted(label_files - used))
    plan = ImportPlan(str(root.resolve()), "yolo", items, names, sorted(skipped), ignored)
    plan.split_unassigned(split, seed)
    return plan
