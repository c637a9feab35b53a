"""Reading an S3 object that survives a dropped connection, from one version of the object only."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from typing import Any, Callable

from ...errors import StoreError
from ..retry import retry_call
from .errors import ErrorMessages, is_transient, s3_failure

log = logging.getLogger(__name__)

#: ``get(offset=..., request_headers=...)``: a GET of the object, not retried (``minio``'s ``get_object``).
Get = Callable[..., Any]
#: ``call(what, fn, key)``: ``fn()`` with the store's retries, its last failure translated.
KeyedCall = Callable[[str, Callable[[], Any], str], Any]


class ObjectChanged(StoreError):
    """A read cannot go on with the version it started on (the object was replaced or deleted,
    or the server's answer cannot show it is the same); raised only after bytes were returned."""


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def etag_of(resp: Any) -> str | None:
    """The response's ETag compared as an opaque string (quotes and a weak ``W/`` dropped)."""
    etag = (resp.headers.get("ETag") or "").strip()
    if etag[:2].upper() == "W/":
        etag = etag[2:]
    return etag.strip('"') or None


class ResumingReader:
    """``read()`` over a GET response that survives a dropped connection (a server restart).

    On a transient error mid-body it reopens the object at the current offset with a ranged
    GET (``get`` under the store's retries) and checks that the rest comes from the same
    version: the request carries ``If-Match`` (a server that honours it answers 412), and the
    answer must show the first response's ETag and size and start at the offset (some servers
    ignore ``If-Match``, rclone among them). A changed or deleted object, or an answer that
    cannot show it is the same, raises ``ObjectChanged``: the bytes of two versions are
    never spliced. Before any byte was returned it simply opens the object again (through
    ``call``, the store's retried and translated request). Bytes already returned are never
    re-read.
    """

    def __init__(self, key: str, resp: Any, *, get: Get, call: KeyedCall, errors: ErrorMessages) -> None:
        self._key = key
        self._get, self._call, self._errors = get, call, errors
        self._pos = 0
        self._adopt(resp)
        self._stalled_since: float | None = None

    def _adopt(self, resp: Any) -> None:
        """Read from ``resp`` (a whole-object GET) from now on; it defines the version read."""
        self._resp = resp
        self._raw_etag: str | None = resp.headers.get("ETag")
        self._etag = etag_of(resp)
        self._last_modified: str | None = resp.headers.get("Last-Modified")
        length = resp.headers.get("Content-Length")
        self._size = int(length) if length and length.isdigit() else None

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when ``n`` is None or negative); ``b""`` at the end."""
        while True:
            try:
                data = self._resp.read() if n is None or n < 0 else self._resp.read(n)
            except Exception as exc:  # noqa: BLE001 - only transient errors are resumed
                if not is_transient(exc):
                    raise
                self._note_stall(exc)
                log.warning("%s: reading %r broke at byte %d (%s); resuming", self._errors.uri, self._key, self._pos, type(exc).__name__)
                self._reopen()
                continue
            if data:
                self._stalled_since = None
            self._pos += len(data)
            return data

    def _note_stall(self, exc: BaseException) -> None:
        """Give up once no byte has arrived for the store's retry deadline."""
        now = time.monotonic()
        if self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since >= self._errors.retry_deadline_s:
            self._errors.raise_translated(exc, f"reading {self._key!r} from byte {self._pos}", self._key)

    def _reopen(self) -> None:
        self._release()
        pos, what = self._pos, f"open_read {self._key!r} from byte {self._pos}"
        if pos == 0:  # nothing returned yet: any version will do
            self._adopt(self._call(what, self._get, self._key))
            return
        if self._size is not None and pos >= self._size:
            self._resp = io.BytesIO(b"")  # everything was read; only the end of the stream was lost
            return
        headers = {"If-Match": self._raw_etag} if self._raw_etag else None

        def get() -> Any:
            return self._get(offset=pos, request_headers=headers)

        errors = self._errors
        try:
            resp = retry_call(get, is_transient=is_transient, what=f"{errors.uri}: {what}", deadline_s=errors.retry_deadline_s)
        except Exception as exc:  # noqa: BLE001 - a changed object, or translated like any failure
            failure = s3_failure(exc)
            if failure is not None and (failure.precondition_failed or failure.missing_key or failure.status == 416):
                raise self._changed(f"it changed on the server ({failure.describe()})") from None
            errors.raise_translated(exc, what, self._key)
        self._resp = resp
        problem = self._differs(resp)
        if problem:
            self._release()
            raise self._changed(problem)

    def _differs(self, resp: Any) -> str | None:
        """Why ``resp`` is not the rest of the version being read (None if it is)."""
        etag = etag_of(resp)
        if self._etag is not None and etag != self._etag:
            return f"it changed on the server (ETag {self._etag!r} became {etag!r})"
        if self._etag is None and resp.headers.get("Last-Modified") != self._last_modified:
            return "it changed on the server (Last-Modified)"
        match = _CONTENT_RANGE.match(resp.headers.get("Content-Range") or "")
        if not match:
            return "the server answered the ranged GET without a Content-Range"
        start, total = int(match.group(1)), match.group(3)
        if total != "*" and self._size is not None and int(total) != self._size:
            return f"it changed on the server (size {self._size} became {total})"
        if start != self._pos:
            return f"the server answered from byte {start}"
        return None

    def _changed(self, why: str) -> ObjectChanged:
        return ObjectChanged(
            self._errors.scrub(f"{self._errors.uri}: cannot resume reading {self._key!r} after {self._pos} bytes: {why}; read it again")
        )

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._resp.close()
            self._resp.release_conn()

    def close(self) -> None:
        """Release the response's connection."""
        self._release()
