"""Datasets: a named set of items with a label set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ._base import Entity, check_dict, check_jsonable, check_name, check_path_part, check_str, check_str_list, new_id, utc_now


@dataclass
class Dataset(Entity):
    """A dataset record (its items are listed by ``Registry.iter_items(dataset, filters)``)."""

    kind: ClassVar[str] = "Dataset"

    name: str
    id: str = field(default_factory=new_id)
    labels: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    def validate(self) -> None:
        check_path_part(self.kind, "id", self.id)
        check_name(self.kind, "name", self.name)
        check_str_list(self.kind, "labels", self.labels)
        check_dict(self.kind, "metadata", self.metadata)
        check_jsonable(self.kind, "metadata", self.metadata)
        check_str(self.kind, "created_at", self.created_at)
