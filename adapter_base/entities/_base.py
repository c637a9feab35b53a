"""Shared machinery of the entities: JSON round trip and field validation."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import random
import re
from datetime import datetime, timezone
from typing import Any, ClassVar, Mapping, TypeVar

from ..errors import ValidationError

E = TypeVar("E", bound="Entity")


#: Ids come from a generator of their own, seeded from the system's randomness here and again in each forked
#: child (so two processes never draw the same ids); the module-level ``random`` is the user's to seed.
#: A uuid4 asks the system for its bytes each time, which costs a model that makes many annotations.
_IDS = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))


def new_id() -> str:
    """A fresh random id (32 hex digits)."""
    return f"{_IDS.getrandbits(128):032x}"


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Entity:
    """Mixin for dataclass entities: ``to_dict``/``from_dict``/JSON, validated on load.

    Subclasses are dataclasses that implement ``validate()`` and may override
    ``_decode`` to turn nested dicts into nested entities.
    """

    kind: ClassVar[str] = "entity"

    def validate(self) -> None:  # pragma: no cover - every entity overrides
        """Raise ``ValidationError`` naming the first bad field."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {name: _encode(getattr(self, name)) for name in _field_names(type(self))}

    def json_fields(self) -> dict[str, Any]:
        """Every field by name, as they are: what a JSON encoder writes for this entity (``Store.put_json``)."""
        return {name: getattr(self, name) for name in _field_names(type(self))}

    def to_json(self, **kwargs: Any) -> str:
        """This entity as a JSON string (strict JSON: no NaN)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_dict(cls: type[E], data: Mapping[str, Any]) -> E:
        """Build and validate an entity from a dict; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ValidationError(cls.kind, "<record>", f"expected an object, got {type(data).__name__}")
        names, required = _schema(cls)
        if not names.issuperset(data):
            raise ValidationError(cls.kind, sorted(set(data) - names)[0], "unknown field")
        for name in required:
            if name not in data:
                raise ValidationError(cls.kind, name, "missing required field")
        obj = cls(**cls._decode(dict(data)))  # type: ignore[call-arg]
        obj.validate()
        return obj

    @classmethod
    def from_json(cls: type[E], text: str | bytes) -> E:
        """Parse and validate a JSON document; malformed JSON names the entity."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValidationError(cls.kind, "<json>", f"malformed JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data


@functools.lru_cache(maxsize=None)
def _schema(cls: type) -> tuple[frozenset[str], tuple[str, ...]]:
    """An entity class's field names and required field names (records are decoded by the thousand)."""
    fields = dataclasses.fields(cls)
    required = tuple(f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    return frozenset(f.name for f in fields), required


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


_LEAVES = frozenset({str, int, float, bool, type(None)})


def _encode(value: Any) -> Any:
    if type(value) in _LEAVES:
        return value
    if isinstance(value, Entity):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


# --- validation helpers: each raises ValidationError(entity, field, why) ----------------


def check_str(entity: str, field: str, value: Any, *, empty: bool = False) -> None:
    if not isinstance(value, str):
        raise ValidationError(entity, field, f"expected a string, got {type(value).__name__}")
    if not empty and not value:
        raise ValidationError(entity, field, "must not be empty")


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ID_LIKE = re.compile(r"[0-9a-f]{32}")
NAME_RULE = "1-128 letters, digits, '.', '_' or '-' (starting with a letter or digit)"


def check_path_part(entity: str, field: str, value: Any) -> None:
    """A value used as one store-key or local-path part (ids, run ids): the name rule, so never ``..`` or ``a/b``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(entity, field, f"must be {NAME_RULE}, got {value!r}")


def check_optional_path_part(entity: str, field: str, value: Any) -> None:
    if value is not None:
        check_path_part(entity, field, value)


def check_name(entity: str, field: str, value: Any) -> None:
    """A dataset or model name: a path part that does not look like an id (32 hex digits), which it would shadow."""
    check_path_part(entity, field, value)
    if _ID_LIKE.fullmatch(value):
        raise ValidationError(entity, field, f"must not look like an id (32 hex digits), got {value!r}")


def check_optional_str(entity: str, field: str, value: Any) -> None:
    if value is not None:
        check_str(entity, field, value)


def check_number(
    entity: str, field: str, value: Any, *, lo: float | None = None, hi: float | None = None
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(entity, field, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValidationError(entity, field, f"must be finite, got {value!r}")
    if lo is not None and value < lo:
        raise ValidationError(entity, field, f"must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValidationError(entity, field, f"must be <= {hi}, got {value!r}")


def check_int(entity: str, field: str, value: Any, *, lo: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(entity, field, f"expected an integer, got {type(value).__name__}")
    if lo is not None and value < lo:
        raise ValidationError(entity, field, f"must be >= {lo}, got {value!r}")


def check_dict(entity: str, field: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError(entity, field, f"expected an object, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise ValidationError(entity, field, f"keys must be strings, got {key!r}")


def check_str_list(entity: str, field: str, value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError(entity, field, "expected a list of non-empty strings")


def check_choice(entity: str, field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValidationError(entity, field, f"must be one of {', '.join(choices)}; got {value!r}")


def check_jsonable(entity: str, field: str, value: Any) -> None:
    if not value and isinstance(value, (dict, list, str)):
        return  # an empty container or string: JSON as it is
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(entity, field, f"not JSON-serialisable: {exc}") from None


def check_model_stamp(entity: Any) -> None:
    """The fields that say which item, model version and run a model's output on an item came from
    (``item_id``, ``model_id``, ``model_name``, ``model_version``, ``run_id``, ``created_at``)."""
    kind = entity.kind
    check_str(kind, "item_id", entity.item_id)
    check_str(kind, "model_id", entity.model_id)
    check_str(kind, "model_name", entity.model_name)
    check_int(kind, "model_version", entity.model_version, lo=0)
    check_optional_str(kind, "run_id", entity.run_id)
    check_str(kind, "created_at", entity.created_at)
