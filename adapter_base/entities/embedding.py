"""A model's embedding of one item: its feature vector, stored and resumed like a prediction set."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import ValidationError
from ._base import Entity, check_model_stamp, utc_now


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
        check_model_stamp(self)
        if not isinstance(self.vector, list) or not self.vector:
            raise ValidationError(self.kind, "vector", "expected a non-empty list of numbers")
        for i, v in enumerate(self.vector):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValidationError(self.kind, f"vector[{i}]", f"expected a finite number, got {v!r}")
