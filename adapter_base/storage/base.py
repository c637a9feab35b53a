"""The object-store interface every backend implements."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ContextManager, Iterator

from ..errors import NotFoundError, StoreError
from .keys import validate_key


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or ``stat`` says about one object."""

    key: str
    size: int
    etag: str | None = None


class ObjectStore(ABC):
    """A flat key -> bytes store. Keys are validated by ``storage.keys.validate_key``.

    Writes of one object are atomic: a reader sees the old object or the new one.
    Large objects are streamed (``put_file``/``get_file``/``open_read``), never held whole in memory.
    """

    uri: str

    def check_key(self, key: object) -> str:
        """``key`` if this store can hold an object under it, else ``InvalidKeyError`` naming it.

        ``validate_key`` plus the backend's own limits (an S3 store's prefix counts toward
        the server's 1024 bytes; a local store's file system may allow shorter names).
        """
        return validate_key(key)

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write a small object."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read a small object whole; ``NotFoundError`` if missing."""

    def get_with_etag(self, key: str) -> tuple[bytes, str | None]:
        """``get_bytes`` with the etag of exactly the version read (the one a listing shows for it), None when unknown."""
        return self.get_bytes(key), None

    @abstractmethod
    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> str:
        """Upload a local file, streaming (multipart where the backend has it).

        Returns the hex SHA-256 of the bytes stored, computed from the same read.
        """

    @abstractmethod
    def get_file(self, key: str, path: str | Path) -> None:
        """Download to ``path`` (parents created); the file appears only when complete."""

    @abstractmethod
    def open_read(self, key: str) -> ContextManager[BinaryIO]:
        """A streaming reader of the object."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size and etag of an object; ``NotFoundError`` if missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Iterate every object under ``prefix`` (recursively), in key order, lazily."""

    def copy(self, src_key: str, dst_key: str) -> None:
        """Copy an object within the store, streaming through a temp file by default."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="store-copy-") as tmp:
            path = Path(tmp) / "object"
            self.get_file(src_key, path)
            self.put_file(dst_key, path)

    def exists(self, key: str) -> bool:
        """True if the object exists."""
        try:
            self.stat(key)
            return True
        except NotFoundError:
            return False

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; returns how many."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        keys = [info.key for info in self.list(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)

    def put_json(self, key: str, value: Any) -> None:
        """Write a JSON document (strict: no NaN; compact, since records are read far more than by eye).

        ``value`` may hold records that have a ``json_fields()`` method (the entities): each is
        written as the object it returns, as its ``to_dict()`` would be, without building that first.
        """
        self.put_bytes(key, json.dumps(value, allow_nan=False, separators=(",", ":"), default=_json_fields).encode(), "application/json")

    def get_json(self, key: str) -> Any:
        """Read a JSON document; malformed JSON is a ``StoreError`` naming the key."""
        return decode_json(self, key, self.get_bytes(key))

    def uri_of(self, key: str) -> str:
        """The URI of the object at ``key``: how output names a stored file."""
        return f"{self.uri.rstrip('/')}/{key}"

    def reopened(self) -> "ObjectStore":
        """The same store, opened anew with the same settings and credentials: what a forked worker process
        uses (connections are not shared across a fork). A store that cannot be raises ``StoreError``."""
        raise StoreError(f"{self!r} cannot be opened again in another process")

    def close(self) -> None:
        """Release connections and pools."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def decode_json(store: ObjectStore, key: str, raw: bytes) -> Any:
    """The JSON document ``raw`` read from ``key``; malformed JSON is a ``StoreError`` naming the key."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{store.uri}: object {key!r} is not valid JSON: {exc}") from None


def _json_fields(value: Any) -> Any:
    fields = getattr(value, "json_fields", None)
    if fields is None:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return fields()
