"""The S3 backend (AWS S3, MinIO, SeaweedFS, rclone, any S3 server) over the ``minio`` client: the object operations.

Objects live at ``<bucket>/<prefix>/<key>``. Every request goes through ``retry_call``
so transient failures (connection refused/reset, timeouts, HTTP 5xx, throttling) are
retried with backoff until ``MODEL_ADAPTER_S3_RETRY_DEADLINE`` seconds (default 60)
have passed; client errors (missing key, access denied, ...) are raised at once. Errors are
classified by HTTP status and S3 error code whatever the body's content type (``errors``).
Settings come from ``config``, listings from ``listing``, streaming reads from ``reader``.

Credentials never appear in ``uri``, ``repr()``, log lines or error messages.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, TypeVar

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.credentials.providers import Provider
from minio.deleteobjects import DeleteObject

from ...errors import InvalidKeyError, NotFoundError, StoreError
from ..atomic import atomic_write
from ..base import ObjectInfo, ObjectStore
from ..digest import HashingReader
from ..keys import MAX_KEY_BYTES, validate_key, validate_prefix
from ..retry import retry_call
from .config import (
    DEFAULT_ENDPOINT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PARALLEL_UPLOADS,
    DEFAULT_PART_SIZE,
    DEFAULT_RETRY_DEADLINE_S,
    ENV_RETRY_DEADLINE,
    MiB,
    check_credentials,
    check_location,
    check_settings,
    env_seconds,
    parse_endpoint,
    parse_s3_uri,
    settings_from_env,
)
from .errors import TRANSIENT_STATUS, ErrorMessages, is_transient
from .listing import Lister, lists_like_a_filesystem
from .reader import ObjectChanged, ResumingReader, etag_of

log = logging.getLogger(__name__)
T = TypeVar("T")

DOWNLOAD_CHUNK = 1 * MiB
#: How many times ``get_file`` starts again from byte 0 when the object changes mid-download.
GET_FILE_RESTARTS = 3


class S3Store(ObjectStore):
    """Objects under ``s3://bucket/prefix`` on any S3-compatible server.

    The bucket is checked on first use: a missing bucket or rejected credentials raise
    ``StoreError`` with a hint. Large files are streamed: ``put_file`` uploads
    ``part_size`` parts (multipart above it) with ``num_parallel_uploads`` threads,
    ``get_file`` streams into a temp file next to the destination and renames it.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        region: str | None = None,
        path_style: bool = False,
        credentials: Provider | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        num_parallel_uploads: int = DEFAULT_PARALLEL_UPLOADS,
        retry_deadline_s: float | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        list_mode: str = "auto",
        cert_check: bool = True,
    ) -> None:
        self._settings = {k: v for k, v in locals().items() if k not in ("self", "bucket", "prefix", "__class__")}
        prefix = check_location(bucket, prefix)
        check_settings(part_size, list_mode)
        check_credentials(access_key, secret_key)
        netloc, secure = parse_endpoint(endpoint)

        self.bucket = bucket
        self.prefix = prefix
        self._root = f"{prefix}/" if prefix else ""
        self.uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.endpoint = f"{'https' if secure else 'http'}://{netloc}"
        self.part_size = part_size
        self.num_parallel_uploads = max(1, num_parallel_uploads)
        self.retry_deadline_s = (
            env_seconds(ENV_RETRY_DEADLINE, DEFAULT_RETRY_DEADLINE_S) if retry_deadline_s is None else retry_deadline_s
        )
        self.list_mode = list_mode
        self._errors = ErrorMessages(
            uri=self.uri,
            endpoint=self.endpoint,
            bucket=bucket,
            secrets=(secret_key or "", access_key or "", session_token or ""),
            retry_deadline_s=self.retry_deadline_s,
        )

        self._http = urllib3.PoolManager(
            num_pools=4,
            maxsize=max(max_connections, 2 * self.num_parallel_uploads),
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            # A couple of quick low-level retries; ``retry_call`` does the long, deadline-bound ones.
            retries=urllib3.Retry(
                total=2,
                connect=2,
                read=1,
                status=2,
                backoff_factor=0.2,
                status_forcelist=sorted(TRANSIENT_STATUS),
            ),
            cert_reqs="CERT_REQUIRED" if cert_check else "CERT_NONE",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        try:
            self._client = Minio(
                netloc,
                access_key=access_key or None,
                secret_key=secret_key or None,
                session_token=session_token or None,
                secure=secure,
                region=region or (None if "amazonaws.com" in netloc else "us-east-1"),
                http_client=self._http,
                credentials=None if access_key else credentials,
                cert_check=cert_check,
            )
        except ValueError as exc:
            raise StoreError(f"cannot configure S3 client for {self.endpoint}: {self._errors.scrub(str(exc))}") from None
        if path_style:
            self._client.disable_virtual_style_endpoint()
        self._lister = Lister(self._client, bucket, self._root, self._call)
        self._open_lock = threading.Lock()
        self._opened = False
        self._walk_listing = list_mode == "walk"

    @classmethod
    def from_uri(cls, uri: str, **overrides: Any) -> "S3Store":
        """Open ``s3://bucket/prefix`` with endpoint and credentials from the environment
        (``config.settings_from_env``); ``overrides`` replace any of them."""
        bucket, prefix = parse_s3_uri(uri)
        kwargs = settings_from_env()
        kwargs.update(overrides)
        return cls(bucket, prefix, **kwargs)

    def reopened(self) -> "S3Store":
        """This bucket and prefix with the same endpoint, credentials and settings, on new connections."""
        return type(self)(self.bucket, self.prefix, **self._settings)

    # ------------------------------------------------------------------ plumbing
    def _full(self, key: str) -> str:
        return self._root + self.check_key(key)

    def check_key(self, key: object) -> str:
        """``validate_key``, and the prefix plus the key within the 1024 bytes S3 servers take (both suite servers refuse more)."""
        validate_key(key)
        if len((self._root + key).encode()) > MAX_KEY_BYTES:  # type: ignore[operator]
            raise InvalidKeyError(
                f"store key is too long for {self.uri}: with the prefix {self._root!r} it is over {MAX_KEY_BYTES} bytes (UTF-8): {key!r}"
            )
        return key  # type: ignore[return-value]

    def _call(self, what: str, fn: Callable[[], T], key: str | None = None, *, opened: bool = True, deadline_s: float | None = None) -> T:
        """Run ``fn`` with retries (until ``deadline_s``, default the store's); translate the final failure."""
        if opened:
            self._ensure_open()
        deadline = self.retry_deadline_s if deadline_s is None else deadline_s
        try:
            return retry_call(fn, is_transient=is_transient, what=f"{self.uri}: {what}", deadline_s=deadline)
        except (StoreError, NotFoundError):
            raise
        except Exception as exc:  # noqa: BLE001 - translated below
            self._errors.raise_translated(exc, what, key, retried_s=deadline)

    def _ensure_open(self, deadline_s: float | None = None) -> None:
        """Check once that the bucket exists and the credentials work."""
        if self._opened:
            return
        with self._open_lock:
            if self._opened:
                return
            exists = self._call("bucket check", lambda: self._client.bucket_exists(self.bucket), opened=False, deadline_s=deadline_s)
            if not exists:
                raise StoreError(self._errors.missing_bucket())
            if self.list_mode == "auto":
                self._walk_listing = lists_like_a_filesystem(self._http, self.endpoint, self.bucket)
            self._opened = True

    def open(self) -> "S3Store":
        """Check the bucket and credentials now, without the long retries of first use: a missing bucket, rejected
        credentials or a server that refuses the connection fail at once, in one line (``open_store(check=True)``)."""
        self._ensure_open(deadline_s=0.0)
        return self

    # ------------------------------------------------------------------ objects
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write a small object with one PUT (retried whole)."""
        name = self._full(key)
        data = bytes(data)

        def put() -> None:
            self._client.put_object(
                self.bucket,
                name,
                io.BytesIO(data),
                len(data),
                content_type=content_type or "application/octet-stream",
                part_size=self.part_size,
            )

        self._call(f"put {key!r}", put, key)

    def get_bytes(self, key: str) -> bytes:
        """Read an object whole; ``NotFoundError`` if missing."""
        return self.get_with_etag(key)[0]

    def get_with_etag(self, key: str) -> tuple[bytes, str | None]:
        """Read an object whole with the ETag of the version read; ``NotFoundError`` if missing."""
        name = self._full(key)

        def get() -> tuple[bytes, str | None]:
            resp = self._client.get_object(self.bucket, name)
            try:
                return resp.read(), etag_of(resp)
            finally:
                resp.close()
                resp.release_conn()

        return self._call(f"get {key!r}", get, key)

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> str:
        """Upload a file streaming, multipart above ``part_size``; a retry restarts the upload.

        The SHA-256 is computed from the bytes as the client reads them to send (one
        open and one read of the file, which matters for thousands of small files).
        """
        name = self._full(key)
        src = os.fspath(path)

        def put() -> str:  # a missing file fails at open(), unretried, named in the StoreError
            h = hashlib.sha256()
            with open(src, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                self._client.put_object(
                    self.bucket,
                    name,
                    HashingReader(fh, h),
                    size,
                    content_type=content_type or "application/octet-stream",
                    part_size=self.part_size,
                    num_parallel_uploads=self.num_parallel_uploads,
                )
            return h.hexdigest()

        return self._call(f"put_file {key!r}", put, key)

    def get_file(self, key: str, path: str | Path) -> None:
        """Stream an object into a temp file next to ``path``, then rename it into place.

        A connection lost mid-download resumes from the last byte written (see
        ``ResumingReader``); if the object changed meanwhile, the download starts again
        from byte zero, so the file is always one whole version of the object.
        """
        name = self._full(key)
        dest = Path(path)
        if dest.is_dir():
            raise StoreError(f"{self.uri}: cannot download {key!r} onto directory {str(dest)!r}")
        with atomic_write(dest) as tmp:
            for attempt in range(1, GET_FILE_RESTARTS + 1):
                try:
                    with self._reader(key, name, "get_file") as reader, open(tmp, "wb") as fh:
                        while chunk := reader.read(DOWNLOAD_CHUNK):
                            fh.write(chunk)
                    break
                except ObjectChanged as exc:
                    if attempt == GET_FILE_RESTARTS:
                        raise StoreError(
                            f"{self.uri}: {key!r} changed during each of {attempt} downloads; last: {exc}"
                        ) from None
                    log.warning("%s (downloading it again from byte 0)", exc)

    @contextlib.contextmanager
    def _reader(self, key: str, name: str, what: str) -> Iterator[ResumingReader]:
        """A ``ResumingReader`` over a (retried) GET of the object; closed on exit."""
        get = functools.partial(self._client.get_object, self.bucket, name)
        resp = self._call(f"{what} {key!r}", get, key)
        reader = ResumingReader(key, resp, get=get, call=self._call, errors=self._errors)
        try:
            yield reader
        finally:
            reader.close()

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """A streaming reader over the GET response; closed and its connection released on exit.

        Opening is retried; a connection lost in the middle of reading is resumed from the
        last byte read, from the same version of the object only (see ``ResumingReader``):
        if the object changed meanwhile, ``read`` raises ``StoreError`` rather than return
        bytes of another version.
        """
        with self._reader(key, self._full(key), "open_read") as reader:
            yield reader  # type: ignore[misc]

    def stat(self, key: str) -> ObjectInfo:
        """Size and etag; ``NotFoundError`` if missing."""
        name = self._full(key)
        st = self._call(f"stat {key!r}", lambda: self._client.stat_object(self.bucket, name), key)
        if st.is_dir or st.object_name.endswith("/"):
            raise NotFoundError(f"{self.uri}: no object {key!r}")
        return ObjectInfo(key=key, size=int(st.size or 0), etag=(st.etag or None))

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is fine."""
        name = self._full(key)
        self._call(f"delete {key!r}", lambda: self._client.remove_object(self.bucket, name), key)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix`` with batched DeleteObjects (1000 a request)."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        keys = [info.key for info in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [DeleteObject(self._root + k) for k in keys[start : start + 1000]]

            def remove(batch: list[DeleteObject] = batch) -> list[Any]:
                return list(self._client.remove_objects(self.bucket, batch))

            errors = self._call(f"delete_prefix {prefix!r}", remove)
            if errors:
                first = errors[0]
                raise StoreError(
                    self._errors.scrub(
                        f"{self.uri}: delete_prefix {prefix!r}: {len(errors)} objects not deleted, "
                        f"first {first.name!r}: {first.code}: {first.message}"
                    )
                )
        return len(keys)

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy (no data through this process)."""
        src, dst = self._full(src_key), self._full(dst_key)
        self._call(
            f"copy {src_key!r} -> {dst_key!r}",
            lambda: self._client.copy_object(self.bucket, dst, CopySource(self.bucket, src)),
            src_key,
        )

    # ------------------------------------------------------------------ listing
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (a plain string prefix of the key), in key order, lazily."""
        validate_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._ensure_open()
        if self._walk_listing:
            yield from self._lister.walk(self._root + prefix)
        else:
            yield from self._lister.flat(self._root + prefix)

    # ------------------------------------------------------------------ misc
    def close(self) -> None:
        """Drop pooled connections."""
        self._http.clear()

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r}, endpoint={self.endpoint!r})"
