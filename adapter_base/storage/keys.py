"""Store keys: relative POSIX paths that can never escape their prefix."""

from __future__ import annotations

import re

from ..errors import InvalidKeyError

#: S3's limit on a whole key, and the usual file-system limit on one path part (the local store).
MAX_KEY_BYTES = 1024
MAX_PART_BYTES = 255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters and the backslash


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe object key, else raise ``InvalidKeyError`` naming it.

    Safe: a non-empty string of ``/``-separated parts, none empty, ``.`` or ``..``,
    not absolute, no backslashes or control characters, encodable as UTF-8, at most
    1024 bytes in all and 255 bytes a part (so every backend can store it).
    """
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"store key must be a non-empty string, got {key!r}")
    if key.startswith("/"):
        raise InvalidKeyError(f"store key must be relative, got absolute {key!r}")
    if _UNSAFE.search(key):
        raise InvalidKeyError(f"store key has a backslash or control character: {key!r}")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: no backend can store the name
        raise InvalidKeyError(f"store key is not valid Unicode text: {key!r}") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(f"store key is longer than {MAX_KEY_BYTES} bytes (UTF-8): {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidKeyError(f"store key has an empty, '.' or '..' part: {key!r}")
        if len(part.encode("utf-8")) > MAX_PART_BYTES:
            raise InvalidKeyError(f"store key has a part longer than {MAX_PART_BYTES} bytes (UTF-8): {key!r}")
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
