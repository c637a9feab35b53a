"""Datasets: a named set of items with a label set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping

from ._base import Entity, check_dict, check_jsonable, check_name, check_path_part, check_str, check_str_list, new_id, utc_now
from .filters import Filters
from .item import Item

if TYPE_CHECKING:
    from ..registry import Registry


@dataclass
class Dataset(Entity):
    """A dataset record. Bound to a registry when loaded from one, so ``items()`` works."""

    kind: ClassVar[str] = "Dataset"

    name: str
    id: str = field(default_factory=new_id)
    labels: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        self._registry: Registry | None = None

    def validate(self) -> None:
        check_path_part(self.kind, "id", self.id)
        check_name(self.kind, "name", self.name)
        check_str_list(self.kind, "labels", self.labels)
        check_dict(self.kind, "metadata", self.metadata)
        check_jsonable(self.kind, "metadata", self.metadata)
        check_str(self.kind, "created_at", self.created_at)

    def bind(self, registry: "Registry") -> "Dataset":
        """Attach the registry that lists this dataset's items."""
        self._registry = registry
        return self

    def items(self, filters: Filters | Mapping[str, Any] | None = None) -> Iterator[Item]:
        """Iterate the items matching ``filters`` (lazily; never loads the whole listing)."""
        if self._registry is None:
            raise RuntimeError(f"dataset {self.name!r} is not bound to a registry")
        return self._registry.iter_items(self, filters)
