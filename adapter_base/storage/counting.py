"""A store wrapper that counts the requests made through it: how many a run costs, per kind."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO, ContextManager, Iterator

from .base import ObjectInfo, ObjectStore

#: Objects one listing request returns at most (S3's ``max-keys``); a listing of n objects costs ``ceil(n / LIST_PAGE)`` requests.
LIST_PAGE = 1000


class CountingStore(ObjectStore):
    """Forwards every call to ``inner`` and counts it: ``counts`` per operation, ``requests`` in all.

    A listing counts as ``ceil(objects / 1000)`` requests (at least one), the pages an S3
    server returns; ``open_read`` and ``get_file`` count one request each. ``max_in_flight``
    is the most calls running at once; ``busy_s`` the seconds spent in calls, per operation
    (over a run's wall time: how many of them were in flight on average).
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.counts: Counter[str] = Counter()
        self.busy_s: Counter[str] = Counter()
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()

    def reopened(self) -> ObjectStore:
        """The inner store, opened anew (a forked worker's requests are not counted here)."""
        return self.inner.reopened()

    @property
    def requests(self) -> int:
        """Every request counted so far."""
        with self._lock:
            return sum(self.counts.values())

    def snapshot(self) -> dict[str, int]:
        """The counts per operation now (a copy)."""
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.counts.clear()
            self.busy_s.clear()
            self.max_in_flight = 0

    @contextlib.contextmanager
    def _count(self, op: str, n: int = 1) -> Iterator[None]:
        with self._lock:
            self.counts[op] += n
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self.busy_s[op] += time.perf_counter() - start

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        with self._count("put"):
            self.inner.put_bytes(key, data, content_type)

    def get_bytes(self, key: str) -> bytes:
        with self._count("get"):
            return self.inner.get_bytes(key)

    def get_with_etag(self, key: str) -> tuple[bytes, str | None]:
        with self._count("get"):
            return self.inner.get_with_etag(key)

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> str:
        with self._count("put"):
            return self.inner.put_file(key, path, content_type)

    def get_file(self, key: str, path: str | Path) -> None:
        with self._count("get"):
            self.inner.get_file(key, path)

    def open_read(self, key: str) -> ContextManager[BinaryIO]:
        with self._lock:
            self.counts["get"] += 1
        return self.inner.open_read(key)

    def stat(self, key: str) -> ObjectInfo:
        with self._count("stat"):
            return self.inner.stat(key)

    def exists(self, key: str) -> bool:
        with self._count("stat"):
            return self.inner.exists(key)

    def delete(self, key: str) -> None:
        with self._count("delete"):
            self.inner.delete(key)

    def copy(self, src_key: str, dst_key: str) -> None:
        with self._count("copy"):
            self.inner.copy(src_key, dst_key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        listed = 0
        try:
            for info in self.inner.list(prefix):
                listed += 1
                yield info
        finally:
            with self._lock:
                self.counts["list"] += max(1, math.ceil(listed / LIST_PAGE))

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
