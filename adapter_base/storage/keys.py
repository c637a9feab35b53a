"""Store keys: relative POSIX paths that can never escape their prefix."""

from __future__ import annotations

from ..errors import InvalidKeyError


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe object key, else raise ``InvalidKeyError`` naming it.

    Safe: a non-empty string of ``/``-separated parts, none empty, ``.`` or ``..``,
    not absolute, no backslashes or control characters.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"store key must be a non-empty string, got {key!r}")
    if key.startswith("/"):
        raise InvalidKeyError(f"store key must be relative, got absolute {key!r}")
    if "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidKeyError(f"store key has a backslash or control character: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKeyError(f"store key has an empty, '.' or '..' part: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Like ``validate_key`` but allows ``""`` and a trailing ``/``."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def join_key(*parts: str) -> str:
    """Join key parts with ``/`` and validate the result."""
    return validate_key("/".join(p.strip("/") for p in parts if p))
