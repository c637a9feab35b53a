"""COCO detection JSON (an images folder and an annotations file): boxes, categories as labels, image sizes.

``bbox`` ``[x, y, w, h]`` becomes a box (left, top, right, bottom) = (x, y, x + w, y + h);
``width`` and ``height`` of each image go to ``item.metadata`` so evaluation can clip
predicted boxes to the image. Crowd annotations (``iscrowd: 1``) are ignored and counted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


from ..entities import AnnotationCollection
from ..errors import ValidationError
from .folder import scan_directory, subset_and_label
from .plan import ImportPlan, PlannedItem, keep_media
from .subsets import subset_alias
from .verify import image_size

COCO_KEYS = ("images", "annotations", "categories")


def read_coco(path: Path) -> dict[str, Any] | None:
    """The parsed file when it is COCO detection JSON (a dict with images, annotations, categories lists), else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(data, dict) and all(isinstance(data.get(k), list) for k in COCO_KEYS):
        return data
    return None


def find_coco(root: Path) -> tuple[Path, Path] | None:
    """``(images folder, annotations file)`` of a COCO folder (``*.json`` or ``annotations/*.json``), or None."""
    candidates = sorted(root.glob("*.json")) + sorted(root.glob("annotations/*.json"))
    found = [p for p in candidates if not p.name.startswith(".") and read_coco(p) is not None]
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in found)
        raise ValidationError("import", "--annotations", f"{root} holds several COCO annotation files ({names}): import each with --format coco --images DIR --annotations FILE --name NAME")
    images = root / "images"
    return (images if images.is_dir() else root), found[0]


def subset_of_file(annotations: Path) -> str | None:
    """The subset an annotations file name names (``instances_val2017.json`` -> ``validation``), or None."""
    for token in re.split(r"[^A-Za-z]+", annotations.stem):
        if token and subset_alias(token):
            return subset_alias(token)
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def plan_coco(images: Path, annotations: Path, *, split: tuple[float, float, float] | None = None, seed: int = 0) -> ImportPlan:
    """What importing a COCO annotations file over an images folder would write; nothing is written."""
    if not images.is_dir():
        raise FileNotFoundError(f"COCO images folder {str(images)!r} is not a directory")
    if not annotations.is_file():
        raise FileNotFoundError(f"COCO annotations file {str(annotations)!r} does not exist")
    data = read_coco(annotations)
    if data is None:
        raise ValidationError("import", "--annotations", f"{annotations} is not COCO detection JSON (a JSON object with 'images', 'annotations' and 'categories' lists)")
    where = annotations.name
    categories: dict[Any, str] = {}
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str) or not cat["name"]:
            raise ValidationError("import", f"{where} categories[{i}]", f"a category needs an id and a non-empty name, got {cat!r}")
        if cat["name"] in categories.values():
            raise ValidationError("import", f"{where} categories[{i}]", f"category name {cat['name']!r} is used twice")
        categories[cat["id"]] = cat["name"]

    scanned, scan_skipped = scan_directory(images)
    media, not_media = keep_media(scanned, "image")
    on_disk = set(media)
    skipped = scan_skipped + not_media
    skipped_paths = {p for p, _ in skipped}
    file_subset = subset_of_file(annotations)
    by_id: dict[Any, PlannedItem] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise ValidationError("import", f"{where} images[{i}]", f"an image needs an id and a file_name, got {image!r}")
        rel = image["file_name"].replace("\\", "/")
        if image["id"] in by_id:
            raise ValidationError("import", f"{where} images[{i}]", f"image id {image['id']!r} is used twice")
        if rel not in on_disk:
            if rel not in skipped_paths:
                skipped.append((rel, f"listed in {where} but not in {images}"))
            continue
        on_disk.discard(rel)
        width, height = image.get("width"), image.get("height")
        broken = None
        if not (_number(width) and _number(height) and width > 0 and height > 0):
            size = image_size(images / rel)
            width, height, broken = (None, None, size) if isinstance(size, str) else (*size, None)
        folder_subsets, _ = subset_and_label(rel)
        subsets = folder_subsets or ([file_subset] if file_subset else [])
        metadata = {"width": width, "height": height, "coco_image_id": image["id"]} if broken is None else {"coco_image_id": image["id"]}
        by_id[image["id"]] = PlannedItem(rel, images / rel, subsets, AnnotationCollection(), metadata, broken)
    skipped.extend((rel, f"not in {where}") for rel in sorted(on_disk))

    ignored: dict[str, int] = {}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise ValidationError("import", f"{where} annotations[{i}]", f"expected an object, got {ann!r}")
        if ann.get("iscrowd"):
            ignored["iscrowd annotations"] = ignored.get("iscrowd annotations", 0) + 1
            continue
        item = by_id.get(ann.get("image_id"))
        if item is None:
            ignored["annotations of images not imported"] = ignored.get("annotations of images not imported", 0) + 1
            continue
        label = categories.get(ann.get("category_id"))
        if label is None:
            raise ValidationError("import", f"{where} annotations[{i}]", f"category_id {ann.get('category_id')!r} is not among the categories")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox) and bbox[2] >= 0 and bbox[3] >= 0):
            raise ValidationError("import", f"{where} annotations[{i}].bbox", f"expected [x, y, width, height] with width, height >= 0, got {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        assert item.annotations is not None
        item.annotations.add_box(x, y, x + w, y + h, label, attributes={"coco_annotation_id": ann["id"]} if "id" in ann else {})
    items = sorted(by_id.values(), key=lambda it: it.path)
    plan = ImportPlan(f"{images.resolve()} + {annotations.resolve()}", "coco", items, list(categories.values()), sorted(skipped), ignored)
    plan.split_unassigned(split, seed)
    return plan
