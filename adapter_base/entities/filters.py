"""Filters that select items of a dataset by subset, path prefix and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ..errors import ValidationError
from ._base import Entity, check_dict, check_jsonable, check_optional_str, check_str_list
from .item import Item

_MISSING = object()


@dataclass
class Filters(Entity):
    """Select items: all given conditions must hold.

    ``path_prefix`` selects a directory (``train`` matches ``train/1.png``, not ``training/1.png``);

    ``metadata`` matches dotted keys (``{"source.camera": "a"}``) by equality;
    ``item_ids`` restricts to an explicit list.
    """

    kind: ClassVar[str] = "Filters"

    subset: str | None = None
    path_prefix: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    item_ids: list[str] | None = None

    def validate(self) -> None:
        check_optional_str(self.kind, "subset", self.subset)
        check_optional_str(self.kind, "path_prefix", self.path_prefix)
        check_dict(self.kind, "metadata", self.metadata)
        check_jsonable(self.kind, "metadata", self.metadata)
        if self.item_ids is not None:
            check_str_list(self.kind, "item_ids", self.item_ids)

    def matches(self, item: Item) -> bool:
        """True when ``item`` satisfies every condition."""
        if self.subset is not None and self.subset not in item.subsets:
            return False
        if self.path_prefix is not None:
            prefix = self.path_prefix.strip("/")
            if prefix and item.path != prefix and not item.path.startswith(prefix + "/"):
                return False
        if self.item_ids is not None and item.id not in self._id_set():
            return False
        for key, want in self.metadata.items():
            if _dotted(item.metadata, key) != want:
                return False
        return True

    def _id_set(self) -> frozenset[str]:
        """``item_ids`` as a set (tens of thousands of ids: a list scan per item is quadratic), rebuilt if replaced or resized."""
        cached = self.__dict__.get("_ids_cache")
        if cached is None or cached[0] is not self.item_ids or cached[1] != len(self.item_ids or ()):
            cached = (self.item_ids, len(self.item_ids or ()), frozenset(self.item_ids or ()))
            self.__dict__["_ids_cache"] = cached
        return cached[2]

    @classmethod
    def coerce(cls, value: "Filters | Mapping[str, Any] | None") -> "Filters":
        """Accept a ``Filters``, a dict of its fields, or ``None`` (everything)."""
        if value is None:
            return cls()
        if isinstance(value, Filters):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise ValidationError(cls.kind, "<filters>", f"expected Filters or a dict, got {type(value).__name__}")


def _dotted(data: Mapping[str, Any], key: str) -> Any:
    cur: Any = data
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur
