"""Every record says what it is; every read checks that against the key it was read from.

A record copied or moved to another key (another item's, dataset's, model's or version's)
is unreadable there, with an error naming the key and the field, instead of being taken
for that key's record.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ..errors import RecordMismatchError

R = TypeVar("R")


def mismatch(record: Any, key: str, **expected: Any) -> RecordMismatchError | None:
    """Why ``record`` (an entity or a dict) is not the record ``key`` stands for, or None when it is.

    ``expected`` maps field names to the values the key stands for (``id=item_id, dataset_id=...``).
    """
    plain = isinstance(record, dict)  # a parsed record; else an entity
    for name, want in expected.items():
        got = record.get(name) if plain else getattr(record, name, None)
        if got != want:
            kind = "record" if plain else getattr(record, "kind", "record")
            return RecordMismatchError(
                kind, name, f"the record at {key!r} says {name} {got!r} where its key says {want!r}: it is another record's copy, not read"
            )
    return None


def check_identity(record: R, key: str, **expected: Any) -> R:
    """``record`` if it is the record ``key`` stands for (see ``mismatch``); else that ``RecordMismatchError`` (a ``ValidationError``)."""
    error = mismatch(record, key, **expected)
    if error is not None:
        raise error
    return record
