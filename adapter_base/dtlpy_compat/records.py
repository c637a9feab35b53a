"""dtlpy's JSON for items and annotations, as its download writes ``json/<item path with .json>``.

Our annotation types and dtlpy's type names (``TYPE_NAMES``), and the coordinates each is
written with: class ``[]``; box two points ``[{x, y, z}, {x, y, z}]``; point ``{x, y, z}``;
polygon ``[[{x, y}, ...]]``; binary a ``data:image/png;base64,`` RGBA PNG (alpha = mask).
"""

from __future__ import annotations

import base64
import io
import posixpath
from typing import Any

import numpy as np
from PIL import Image

from ..entities import Annotation, AnnotationCollection, Item, decode_mask

#: Our annotation type -> dtlpy's type name (``dl.AnnotationType`` values).
TYPE_NAMES: dict[str, str] = {
    "classification": "class",
    "box": "box",
    "point": "point",
    "polygon": "segment",
    "binary_mask": "binary",
}
_PNG_PREFIX = "data:image/png;base64,"


def json_path(item: Item) -> str:
    """Where dtlpy writes an item's JSON under ``json/``: the item's path with its suffix replaced by ``.json``."""
    stem, _ = posixpath.splitext(item.path)
    return stem + ".json"


def mask_png(mask: np.ndarray) -> str:
    """A boolean mask as dtlpy's binary coordinates: a data URL of a white RGBA PNG whose alpha is the mask."""
    m = np.asarray(mask).astype(bool).astype(np.uint8) * 255
    buf = io.BytesIO()
    Image.fromarray(np.stack([m, m, m, m], axis=2), mode="RGBA").save(buf, format="PNG")
    return _PNG_PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")


def png_mask(coordinates: Any) -> np.ndarray:
    """The boolean mask of dtlpy binary coordinates (a data URL, or ``{"data": url}``)."""
    data = coordinates["data"] if isinstance(coordinates, dict) else coordinates
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(data[len(_PNG_PREFIX) :]))))
    return (image[..., -1] if image.ndim == 3 else image) > 127


def _coordinates(ann: Annotation) -> Any:
    c = ann.coordinates
    if ann.type == "box":
        return [{"x": c["left"], "y": c["top"], "z": 0}, {"x": c["right"], "y": c["bottom"], "z": 0}]
    if ann.type == "point":
        return {"x": c["x"], "y": c["y"], "z": 0}
    if ann.type == "polygon":
        return [[{"x": x, "y": y} for x, y in c]]
    if ann.type == "binary_mask":
        return mask_png(decode_mask(c))
    return []


def annotation_json(ann: Annotation, item: Item) -> dict[str, Any]:
    """One annotation as dtlpy writes it (ground truth: no ``metadata.user.model``)."""
    user: dict[str, Any] = {}
    if ann.model is not None:
        user["model"] = {"confidence": ann.model.confidence, "name": ann.model.model_name, "model_id": ann.model.model_id}
    return {
        "id": ann.id,
        "itemId": item.id,
        "datasetId": item.dataset_id,
        "type": TYPE_NAMES[ann.type],
        "label": ann.label,
        "attributes": ann.attributes,
        "coordinates": _coordinates(ann),
        "metadata": {"system": {}, "user": user},
    }


def item_json(item: Item, annotations: AnnotationCollection) -> dict[str, Any]:
    """An item and its annotations as dtlpy writes them under ``json/``."""
    anns = [annotation_json(a, item) for a in annotations]
    return {
        "id": item.id,
        "datasetId": item.dataset_id,
        "filename": "/" + item.path,
        "name": item.name,
        "dir": item.dir,
        "type": "file",
        "metadata": {"system": {"mimetype": item.mimetype, "size": item.size, "subsets": item.subsets}, "user": item.metadata},
        "annotated": bool(anns),
        "annotationsCount": len(anns),
        "annotations": anns,
    }
