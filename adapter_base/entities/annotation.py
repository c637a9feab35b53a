"""Annotations (ground truth and predictions) and per-item collections of them.

Ground truth is an annotation without ``model`` info; a prediction carries a
``ModelInfo`` with the model id, model name and a confidence in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator, Sequence

import numpy as np

from ..errors import ValidationError
from ._base import (
    Entity,
    check_dict,
    check_jsonable,
    check_int,
    check_number,
    check_optional_str,
    check_str,
    new_id,
)

ANNOTATION_TYPES: tuple[str, ...] = ("classification", "box", "polygon", "point", "binary_mask")


@dataclass
class ModelInfo(Entity):
    """Who predicted an annotation and how sure it was.

    ``model_id`` / ``model_name`` may be left empty by an adapter's ``predict``;
    the framework stamps them before anything is stored.
    """

    kind: ClassVar[str] = "ModelInfo"

    confidence: float
    model_id: str | None = None
    model_name: str | None = None
    model_version: int | None = None

    def __post_init__(self) -> None:
        # NumPy scalars (``np.float32(0.8)``, what models compute) are taken as Python floats.
        if isinstance(self.confidence, (np.floating, np.integer)):
            self.confidence = float(self.confidence)

    def validate(self) -> None:
        check_number(self.kind, "confidence", self.confidence, lo=0.0, hi=1.0)
        check_optional_str(self.kind, "model_id", self.model_id)
        check_optional_str(self.kind, "model_name", self.model_name)
        if self.model_version is not None:
            check_int(self.kind, "model_version", self.model_version, lo=0)


@dataclass
class Annotation(Entity):
    """One annotation on an item. Build with the classmethods (``Annotation.box(...)``)."""

    kind: ClassVar[str] = "Annotation"

    type: str
    label: str
    coordinates: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    model: ModelInfo | None = None
    id: str = field(default_factory=new_id)
    metadata: dict[str, Any] = field(default_factory=dict)

    # --- builders -------------------------------------------------------------------
    @classmethod
    def classification(cls, label: str, *, confidence: float | None = None, **kw: Any) -> "Annotation":
        """A whole-item label."""
        return cls._build("classification", label, None, confidence, kw)

    @classmethod
    def box(
        cls, left: float, top: float, right: float, bottom: float, label: str, *, confidence: float | None = None, **kw: Any
    ) -> "Annotation":
        """An axis-aligned box in pixels: (left, top) to (right, bottom)."""
        coords = {"left": _num(left), "top": _num(top), "right": _num(right), "bottom": _num(bottom)}
        return cls._build("box", label, coords, confidence, kw)

    @classmethod
    def polygon(
        cls, points: Iterable[Sequence[float]], label: str, *, confidence: float | None = None, **kw: Any
    ) -> "Annotation":
        """A closed polygon given as ``[(x, y), ...]`` (at least three points)."""
        coords = [[_num(p[0]), _num(p[1])] for p in points]
        return cls._build("polygon", label, coords, confidence, kw)

    @classmethod
    def point(cls, x: float, y: float, label: str, *, confidence: float | None = None, **kw: Any) -> "Annotation":
        """A single point."""
        return cls._build("point", label, {"x": _num(x), "y": _num(y)}, confidence, kw)

    @classmethod
    def binary_mask(cls, mask: Any, label: str, *, confidence: float | None = None, **kw: Any) -> "Annotation":
        """A per-pixel mask from a 2-D boolean array, stored run-length encoded."""
        arr = np.asarray(mask)
        if arr.ndim != 2:
            raise ValidationError(cls.kind, "coordinates", f"a binary mask must be 2-D, got shape {arr.shape}")
        return cls._build("binary_mask", label, encode_mask(arr.astype(bool)), confidence, kw)

    @classmethod
    def _build(cls, type_: str, label: str, coords: Any, confidence: float | None, kw: dict[str, Any]) -> "Annotation":
        model = kw.pop("model", None)
        if confidence is not None and model is None:
            model = ModelInfo(confidence=float(confidence))
        ann = cls(type=type_, label=label, coordinates=coords, model=model, **kw)
        ann.validate()
        return ann

    # --- views ----------------------------------------------------------------------
    @property
    def is_prediction(self) -> bool:
        """True when this annotation came from a model."""
        return self.model is not None

    @property
    def confidence(self) -> float | None:
        """The model's confidence, or None for ground truth."""
        return None if self.model is None else self.model.confidence

    def with_model(self, model: ModelInfo) -> "Annotation":
        """A copy of this annotation (sharing its coordinates, attributes and metadata) with ``model`` as its model info."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)  # what ``dataclasses.replace`` gives, without running ``__init__`` again
        new.model = model
        return new

    def mask(self) -> np.ndarray:
        """The decoded boolean mask of a ``binary_mask`` annotation."""
        if self.type != "binary_mask":
            raise TypeError(f"annotation {self.id} is a {self.type}, not a binary_mask")
        return decode_mask(self.coordinates)

    # --- validation -----------------------------------------------------------------
    def validate(self) -> None:
        check_str(self.kind, "id", self.id)
        if self.type not in ANNOTATION_TYPES:
            raise ValidationError(self.kind, "type", f"must be one of {', '.join(ANNOTATION_TYPES)}; got {self.type!r}")
        check_str(self.kind, "label", self.label)
        check_dict(self.kind, "attributes", self.attributes)
        check_dict(self.kind, "metadata", self.metadata)
        check_jsonable(self.kind, "attributes", self.attributes)
        check_jsonable(self.kind, "metadata", self.metadata)
        if self.model is not None:
            if not isinstance(self.model, ModelInfo):
                raise ValidationError(self.kind, "model", "expected ModelInfo")
            self.model.validate()
        _COORD_CHECKS[self.type](self.coordinates)

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("model"), dict):
            data["model"] = ModelInfo.from_dict(data["model"])
        return data


@dataclass
class AnnotationCollection(Entity):
    """The annotations of one item, as ``predict`` returns them (one collection per item)."""

    kind: ClassVar[str] = "AnnotationCollection"

    annotations: list[Annotation] = field(default_factory=list)
    item_id: str | None = None

    def add(self, annotation: Annotation) -> Annotation:
        """Append a validated annotation and return it."""
        if not isinstance(annotation, Annotation):
            raise ValidationError(self.kind, "annotations", f"expected an Annotation, got {type(annotation).__name__}")
        annotation.validate()
        self.annotations.append(annotation)
        return annotation

    def _append(self, annotation: Annotation) -> Annotation:
        """Append an annotation its constructor (``Annotation.box`` ...) has just validated."""
        self.annotations.append(annotation)
        return annotation

    def add_classification(self, label: str, *, confidence: float | None = None, **kw: Any) -> Annotation:
        return self._append(Annotation.classification(label, confidence=confidence, **kw))

    def add_box(self, left: float, top: float, right: float, bottom: float, label: str, *, confidence: float | None = None, **kw: Any) -> Annotation:
        return self._append(Annotation.box(left, top, right, bottom, label, confidence=confidence, **kw))

    def add_polygon(self, points: Iterable[Sequence[float]], label: str, *, confidence: float | None = None, **kw: Any) -> Annotation:
        return self._append(Annotation.polygon(points, label, confidence=confidence, **kw))

    def add_point(self, x: float, y: float, label: str, *, confidence: float | None = None, **kw: Any) -> Annotation:
        return self._append(Annotation.point(x, y, label, confidence=confidence, **kw))

    def add_binary_mask(self, mask: Any, label: str, *, confidence: float | None = None, **kw: Any) -> Annotation:
        return self._append(Annotation.binary_mask(mask, label, confidence=confidence, **kw))

    def __iter__(self) -> Iterator[Annotation]:
        return iter(self.annotations)

    def __len__(self) -> int:
        return len(self.annotations)

    def ground_truth(self) -> list[Annotation]:
        """Annotations without model info."""
        return [a for a in self.annotations if a.model is None]

    def predictions(self, model_id: str | None = None) -> list[Annotation]:
        """Predictions, optionally only those of ``model_id``."""
        return [a for a in self.annotations if a.model is not None and (model_id is None or a.model.model_id == model_id)]

    def validate(self) -> None:
        if not isinstance(self.annotations, list):
            raise ValidationError(self.kind, "annotations", "expected a list")
        for i, ann in enumerate(self.annotations):
            if not isinstance(ann, Annotation):
                raise ValidationError(self.kind, f"annotations[{i}]", f"expected an Annotation, got {type(ann).__name__}")
            try:
                ann.validate()
            except ValidationError as exc:
                raise ValidationError(self.kind, f"annotations[{i}].{exc.field}", exc.message) from None
        check_optional_str(self.kind, "item_id", self.item_id)

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        anns = data.get("annotations", [])
        if not isinstance(anns, list):
            raise ValidationError(cls.kind, "annotations", "expected a list")
        decoded = []
        for i, a in enumerate(anns):
            try:
                decoded.append(Annotation.from_dict(a))
            except ValidationError as exc:
                raise ValidationError(cls.kind, f"annotations[{i}].{exc.field}", exc.message) from None
        data["annotations"] = decoded
        return data


# --- coordinates ----------------------------------------------------------------------


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValidationError("Annotation", "coordinates", f"expected a number, got {v!r}") from None


def _coord(name: str, v: Any) -> None:
    check_number("Annotation", f"coordinates.{name}", v, lo=0.0)


def _check_classification(c: Any) -> None:
    if c is not None:
        raise ValidationError("Annotation", "coordinates", "a classification has no coordinates")


def _check_box(c: Any) -> None:
    if not isinstance(c, dict) or set(c) != {"left", "top", "right", "bottom"}:
        raise ValidationError("Annotation", "coordinates", "a box needs exactly left, top, right, bottom")
    for k in ("left", "top", "right", "bottom"):
        # Any finite number: detectors' raw boxes may cross the image border; evaluation clips them.
        check_number("Annotation", f"coordinates.{k}", c[k])
    if c["right"] < c["left"] or c["bottom"] < c["top"]:
        raise ValidationError("Annotation", "coordinates", f"box has right < left or bottom < top: {c}")


def _check_polygon(c: Any) -> None:
    if not isinstance(c, list) or len(c) < 3:
        raise ValidationError("Annotation", "coordinates", "a polygon needs at least three [x, y] points")
    for i, p in enumerate(c):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise ValidationError("Annotation", f"coordinates[{i}]", "expected an [x, y] pair")
        _coord(f"[{i}].x", p[0])
        _coord(f"[{i}].y", p[1])


def _check_point(c: Any) -> None:
    if not isinstance(c, dict) or set(c) != {"x", "y"}:
        raise ValidationError("Annotation", "coordinates", "a point needs exactly x, y")
    _coord("x", c["x"])
    _coord("y", c["y"])


def _check_mask(c: Any) -> None:
    if not isinstance(c, dict) or set(c) != {"height", "width", "rle"}:
        raise ValidationError("Annotation", "coordinates", "a binary mask needs height, width, rle")
    check_int("Annotation", "coordinates.height", c["height"], lo=1)
    check_int("Annotation", "coordinates.width", c["width"], lo=1)
    rle = c["rle"]
    if not isinstance(rle, list) or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in rle):
        raise ValidationError("Annotation", "coordinates.rle", "expected a list of non-negative run lengths")
    if sum(rle) != c["height"] * c["width"]:
        raise ValidationError("Annotation", "coordinates.rle", "run lengths do not add up to height * width")


_COORD_CHECKS = {
    "classification": _check_classification,
    "box": _check_box,
    "polygon": _check_polygon,
    "point": _check_point,
    "binary_mask": _check_mask,
}


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Run-length encode a boolean mask in row-major order; runs start with ``False``."""
    flat = mask.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return {"height": int(mask.shape[0]), "width": int(mask.shape[1]), "rle": [int(r) for r in runs]}


def decode_mask(coords: dict[str, Any]) -> np.ndarray:
    """The boolean mask of an RLE produced by ``encode_mask``."""
    values = np.zeros(len(coords["rle"]), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, coords["rle"])
    return flat.reshape(coords["height"], coords["width"])
