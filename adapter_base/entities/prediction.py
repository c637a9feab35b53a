"""A model's prediction set on one item: the unit that is written, replaced and resumed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ValidationError
from ._base import Entity, check_model_stamp, utc_now
from .annotation import Annotation, AnnotationCollection


@dataclass
class PredictionSet(Entity):
    """Every annotation one model version predicted on one item, from one run.

    Stored as a single object per (item, model id, version), so replacing that version's
    earlier predictions is one atomic write, and its presence marks the item done.
    """

    kind: ClassVar[str] = "PredictionSet"

    item_id: str
    model_id: str
    model_name: str
    model_version: int
    annotations: list[Annotation] = field(default_factory=list)
    run_id: str | None = None
    created_at: str = field(default_factory=utc_now)

    def validate(self) -> None:
        check_model_stamp(self)
        AnnotationCollection(annotations=self.annotations).validate()
        for i, ann in enumerate(self.annotations):
            if ann.model is None or ann.model.model_id != self.model_id:
                raise ValidationError(self.kind, f"annotations[{i}].model", f"prediction not stamped with model id {self.model_id}")

    def collection(self) -> AnnotationCollection:
        """The annotations as a collection for this item."""
        return AnnotationCollection(annotations=list(self.annotations), item_id=self.item_id)

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        data["annotations"] = AnnotationCollection._decode({"annotations": data.get("annotations", [])})["annotations"]
        return data
