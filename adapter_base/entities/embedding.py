"""A model's embedding of one item: its feature vector, stored and resumed like a prediction set."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import ValidationError
from ._base import Entity, check_int, check_optional_str, check_str, utc_now


@dataclass
class Embedding(Entity):
    """The feature vector ``embed`` returned for one item, with the model version and run that made it."""

    kind: ClassVar[str] = "Embedding"

    item_id: str
    model_id: str
    model_name: str
    model_version: int
    vector: list[float] = field(default_factory=list)
    run_id: str | None = None
    created_at: str = field(default_factory=utc_now)

    def validate(self) -> None:
        check_str(self.kind, "item_id", self.item_id)
        check_str(self.kind, "model_id", self.model_id)
        check_str(self.kind, "model_name", self.model_name)
        check_int(self.kind, "model_version", self.model_version, lo=0)
        check_optional_str(self.kind, "run_id", self.run_id)
        check_str(self.kind, "created_at", self.created_at)
        if not isinstance(self.vector, list) or not self.vector:
            raise ValidationError(self.kind, "vector", "expected a non-empty list of numbers")
        for i, v in enumerate(self.vector):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValidationError(self.kind, f"vector[{i}]", f"expected a finite number, got {v!r}")
