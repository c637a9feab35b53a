"""The S3 backend (AWS S3, MinIO, SeaweedFS, rclone, any S3 server) over the ``minio`` client.

Objects live at ``<bucket>/<prefix>/<key>``. Every request goes through ``retry_call``
so transient failures (connection refused/reset, timeouts, HTTP 5xx, throttling) are
retried with backoff until ``MODEL_ADAPTER_S3_RETRY_DEADLINE`` seconds (default 60)
have passed; client errors (missing key, access denied, ...) are raised at once. Errors are
classified by HTTP status and S3 error code whatever the body's content type (``s3_errors``).

Credentials never appear in ``uri``, ``repr()``, log lines or error messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, NoReturn, TypeVar
from urllib.parse import urlparse

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.credentials.providers import IamAwsProvider, Provider
from minio.deleteobjects import DeleteObject

from ..errors import InvalidKeyError, NotFoundError, StoreError
from .base import ObjectInfo, ObjectStore
from .digest import HashingReader
from .keys import validate_key, validate_prefix
from .retry import retry_call
from .s3_errors import TRANSIENT_STATUS, is_transient, s3_failure

log = logging.getLogger(__name__)
T = TypeVar("T")

MiB = 1024 * 1024
DEFAULT_ENDPOINT = "https://s3.amazonaws.com"
DEFAULT_PART_SIZE = 16 * MiB
DEFAULT_PARALLEL_UPLOADS = 4
DEFAULT_RETRY_DEADLINE_S = 60.0
DEFAULT_MAX_CONNECTIONS = 32
DOWNLOAD_CHUNK = 1 * MiB
#: How many times ``get_file`` starts again from byte 0 when the object changes mid-download.
GET_FILE_RESTARTS = 3

ENV_RETRY_DEADLINE = "MODEL_ADAPTER_S3_RETRY_DEADLINE"
ENV_PATH_STYLE = "MODEL_ADAPTER_S3_PATH_STYLE"
ENV_LIST_MODE = "MODEL_ADAPTER_S3_LIST_MODE"

_LIST_MODES = ("auto", "flat", "walk")


def _env_flag(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


def _env_float(name: str, default: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise StoreError(f"${name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise StoreError(f"${name} must be >= 0, got {raw!r}")
    return value


def parse_endpoint(endpoint: str) -> tuple[str, bool]:
    """``"http://host:port"`` -> ``("host:port", secure=False)``; no scheme means https.

    User info in the URL is refused without echoing it (it would be a credential).
    """
    text = endpoint.strip()
    if "://" not in text:
        text = "https://" + text
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https"):
        raise StoreError(f"S3 endpoint must be http:// or https://, got scheme {parsed.scheme!r}")
    if "@" in parsed.netloc:
        raise StoreError(
            "S3 endpoint URL must not embed credentials; use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        )
    if not parsed.hostname:
        raise StoreError(f"S3 endpoint {endpoint!r} has no host")
    if parsed.path not in ("", "/") or parsed.query:
        raise StoreError(f"S3 endpoint {endpoint!r} must be scheme://host[:port] with no path")
    return parsed.netloc, parsed.scheme == "https"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``"s3://bucket/a/b"`` -> ``("bucket", "a/b")``; ``StoreError`` if there is no bucket."""
    from . import check_store_uri  # never echo a URI with a credential in it

    parsed = urlparse(check_store_uri(uri))
    if parsed.scheme != "s3":
        raise StoreError(f"not an s3:// store URI: {uri!r}")
    bucket = parsed.netloc
    if not bucket:
        raise StoreError(f"store URI {uri!r} names no bucket: use s3://<bucket>[/<prefix>]")
    if parsed.query or parsed.fragment:
        raise StoreError(f"store URI {uri!r} must not have a query or fragment")
    return bucket, parsed.path.strip("/")


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
        if not bucket:
            raise StoreError("S3 store needs a bucket name: use s3://<bucket>[/<prefix>]")
        prefix = prefix.strip("/")
        if prefix:
            try:
                validate_key(prefix)
            except InvalidKeyError as exc:
                raise StoreError(f"bad prefix in s3://{bucket}/{prefix}: {exc}") from None
        if part_size < 5 * MiB:
            raise StoreError(f"S3 part size must be at least 5 MiB, got {part_size}")
        if list_mode not in _LIST_MODES:
            raise StoreError(f"S3 list mode must be one of {_LIST_MODES}, got {list_mode!r}")
        if access_key and not secret_key:
            raise StoreError("an S3 access key was given without a secret key (set AWS_SECRET_ACCESS_KEY)")
        netloc, secure = parse_endpoint(endpoint)

        self.bucket = bucket
        self.prefix = prefix
        self._root = f"{prefix}/" if prefix else ""
        self.uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.endpoint = f"{'https' if secure else 'http'}://{netloc}"
        self.part_size = part_size
        self.num_parallel_uploads = max(1, num_parallel_uploads)
        self.retry_deadline_s = (
            _env_float(ENV_RETRY_DEADLINE, DEFAULT_RETRY_DEADLINE_S) if retry_deadline_s is None else retry_deadline_s
        )
        self.list_mode = list_mode
        # Strings that must never leak into messages (see ``_scrub``).
        self._secrets = tuple(s for s in (secret_key, access_key, session_token) if s and len(s) >= 4)

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
            raise StoreError(f"cannot configure S3 client for {self.endpoint}: {self._scrub(str(exc))}") from None
        if path_style:
            self._client.disable_virtual_style_endpoint()
        self._open_lock = threading.Lock()
        self._opened = False
        self._walk_listing = list_mode == "walk"

    # ------------------------------------------------------------------ building
    @classmethod
    def from_uri(cls, uri: str, **overrides: Any) -> "S3Store":
        """Open ``s3://bucket/prefix`` with endpoint and credentials from the environment.

        ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (default AWS; the scheme decides TLS),
        ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` (else an IAM
        web-identity or container role when those variables exist, else anonymous),
        ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``MODEL_ADAPTER_S3_PATH_STYLE=true``,
        ``MODEL_ADAPTER_S3_RETRY_DEADLINE`` (seconds) and ``MODEL_ADAPTER_S3_LIST_MODE``.
        """
        bucket, prefix = parse_s3_uri(uri)
        env = os.environ
        access_key = env.get("AWS_ACCESS_KEY_ID") or None
        credentials: Provider | None = None
        if not access_key and (
            env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
            or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        ):
            credentials = IamAwsProvider()
        kwargs: dict[str, Any] = dict(
            endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT,
            access_key=access_key,
            secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            path_style=_env_flag(ENV_PATH_STYLE),
            credentials=credentials,
            retry_deadline_s=_env_float(ENV_RETRY_DEADLINE, DEFAULT_RETRY_DEADLINE_S),
            list_mode=(env.get(ENV_LIST_MODE) or "auto").strip().lower(),
        )
        kwargs.update(overrides)
        return cls(bucket, prefix, **kwargs)

    # ------------------------------------------------------------------ plumbing
    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _full(self, key: str) -> str:
        return self._root + validate_key(key)

    def _fail(self, exc: BaseException, what: str, key: str | None) -> BaseException:
        """Translate a client exception into ``NotFoundError`` / ``StoreError`` by status and S3 code."""
        failure = s3_failure(exc)
        if failure is not None and not failure.transient:
            if failure.missing_key and key is not None:
                return NotFoundError(f"{self.uri}: no object {key!r}")
            if failure.missing_bucket:
                return StoreError(self._missing_bucket_message())
            if failure.rejected_credentials:
                return StoreError(self._credentials_message(failure.code or f"HTTP {failure.status}", what))
            return StoreError(self._scrub(f"{self.uri}: {what} failed: {failure.describe()}"))
        if is_transient(exc):
            return StoreError(
                self._scrub(
                    f"{self.uri}: {what} failed at {self.endpoint} after retrying for "
                    f"{self.retry_deadline_s:g}s ({ENV_RETRY_DEADLINE}): {type(exc).__name__}: {exc}"
                )
            )
        return StoreError(self._scrub(f"{self.uri}: {what} failed: {type(exc).__name__}: {exc}"))

    def _missing_bucket_message(self) -> str:
        return (
            f"S3 bucket {self.bucket!r} does not exist at {self.endpoint} (store {self.uri}); "
            f"create it first (e.g. `mc mb <alias>/{self.bucket}` or `aws s3 mb s3://{self.bucket}`) "
            f"or fix the bucket name in the store URI"
        )

    def _credentials_message(self, code: str, what: str) -> str:
        return (
            f"S3 credentials were rejected by {self.endpoint} ({code}) during {what} on {self.uri}: "
            f"check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "
            f"and that they may access bucket {self.bucket!r}"
        )

    def _call(self, what: str, fn: Callable[[], T], key: str | None = None, *, opened: bool = True) -> T:
        """Run ``fn`` with retries; translate the final failure."""
        if opened:
            self._ensure_open()
        try:
            return retry_call(fn, is_transient=is_transient, what=f"{self.uri}: {what}", deadline_s=self.retry_deadline_s)
        except (StoreError, NotFoundError):
            raise
        except Exception as exc:  # noqa: BLE001 - translated below
            self._raise_failure(exc, what, key)

    def _raise_failure(self, exc: BaseException, what: str, key: str | None) -> NoReturn:
        """Raise ``exc`` translated by ``_fail``, chained to it unless it is a credentials error."""
        err = self._fail(exc, what, key)
        failure = s3_failure(exc)
        cause = None if failure is not None and failure.rejected_credentials else exc
        # Error -> traceback -> frame -> error cycles (here, and minio's own) would keep every
        # caller's locals alive until the cyclic GC runs: a missed ``exists`` is common.
        traceback.clear_frames(exc.__traceback__)
        try:
            raise err from cause
        finally:
            del err, cause

    def _ensure_open(self) -> None:
        """Check once that the bucket exists and the credentials work."""
        if self._opened:
            return
        with self._open_lock:
            if self._opened:
                return
            exists = self._call("bucket check", lambda: self._client.bucket_exists(self.bucket), opened=False)
            if not exists:
                raise StoreError(self._missing_bucket_message())
            if self.list_mode == "auto":
                self._walk_listing = self._server_lists_like_a_filesystem()
            self._opened = True

    def _server_lists_like_a_filesystem(self) -> bool:
        """SeaweedFS lists recursively in directory-walk order, not key order: walk it instead."""
        try:
            resp = self._http.request("HEAD", f"{self.endpoint}/{self.bucket}", retries=False, timeout=5.0)
            server = resp.headers.get("Server", "")
        except Exception:  # noqa: BLE001 - detection is best effort
            return False
        return "seaweedfs" in server.lower()

    def open(self) -> "S3Store":
        """Check the bucket and credentials now (otherwise done on first use)."""
        self._ensure_open()
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
        name = self._full(key)

        def get() -> bytes:
            resp = self._client.get_object(self.bucket, name)
            try:
                return resp.read()
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
        ``_ResumingReader``); if the object changed meanwhile, the download starts again
        from byte zero, so the file is always one whole version of the object.
        """
        name = self._full(key)
        dest = Path(path)
        if dest.is_dir():
            raise StoreError(f"{self.uri}: cannot download {key!r} onto directory {str(dest)!r}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
        try:
            for attempt in range(1, GET_FILE_RESTARTS + 1):
                try:
                    with self._reader(key, name, "get_file") as reader, open(tmp, "wb") as fh:
                        while chunk := reader.read(DOWNLOAD_CHUNK):
                            fh.write(chunk)
                    break
                except _ObjectChanged as exc:
                    if attempt == GET_FILE_RESTARTS:
                        raise StoreError(
                            f"{self.uri}: {key!r} changed during each of {attempt} downloads; last: {exc}"
                        ) from None
                    log.warning("%s (downloading it again from byte 0)", exc)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _reader(self, key: str, name: str, what: str) -> Iterator[_ResumingReader]:
        """A ``_ResumingReader`` over a (retried) GET of the object; closed on exit."""
        resp = self._call(f"{what} {key!r}", lambda: self._client.get_object(self.bucket, name), key)
        reader = _ResumingReader(self, key, name, resp)
        try:
            yield reader
        finally:
            reader.close()

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """A streaming reader over the GET response; closed and its connection released on exit.

        Opening is retried; a connection lost in the middle of reading is resumed from the
        last byte read, from the same version of the object only (see ``_ResumingReader``):
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
                    self._scrub(
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
            yield from self._walk(self._root + prefix)
        else:
            yield from self._flat(self._root + prefix)

    def _info(self, obj: Any) -> ObjectInfo:
        return ObjectInfo(key=obj.object_name[len(self._root) :], size=int(obj.size or 0), etag=obj.etag or None)

    def _flat(self, full_prefix: str) -> Iterator[ObjectInfo]:
        """Recursive listing in the server's (S3: key) order; resumes after the last key on failure."""
        last: str | None = None
        it: Iterator[Any] | None = None
        done = object()

        def step() -> Any:
            nonlocal it
            if it is None:
                it = iter(
                    self._client.list_objects(
                        self.bucket, prefix=full_prefix or None, recursive=True, start_after=last
                    )
                )
            try:
                return next(it, done)
            except BaseException:
                it = None  # restart the listing after ``last``
                raise

        while True:
            obj = self._call(f"list {full_prefix!r}", step)
            if obj is done:
                return
            last = obj.object_name
            if obj.is_dir or obj.object_name.endswith("/"):
                continue
            yield self._info(obj)

    def _walk(self, full_prefix: str) -> Iterator[ObjectInfo]:
        """Directory-by-directory listing sorted into key order (for servers whose recursive
        listing is in directory-walk order, e.g. SeaweedFS, which puts ``a/x`` before ``a-b``).

        One directory level is held in memory at a time; deeper levels are listed on demand.
        """
        # The level is kept as bare tuples (a listed ``Object`` carries much more), sorted, and
        # dropped entry by entry as it is handed out.
        level = self._call(
            f"list {full_prefix!r}",
            lambda: [
                (o.object_name, bool(o.is_dir), int(o.size or 0), o.etag or None)
                for o in self._client.list_objects(self.bucket, prefix=full_prefix or None, recursive=False)
            ],
        )
        # Directories sort by their name with the trailing "/", exactly as keys do.
        level.sort(reverse=True)
        while level:
            name, is_dir, size, etag = level.pop()
            if not name.startswith(full_prefix):
                continue
            if is_dir or name.endswith("/"):
                if name != full_prefix:  # SeaweedFS lists an empty directory as itself
                    yield from self._walk(name)
            else:
                yield ObjectInfo(key=name[len(self._root) :], size=size, etag=etag)

    # ------------------------------------------------------------------ misc
    def close(self) -> None:
        """Drop pooled connections."""
        self._http.clear()

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r}, endpoint={self.endpoint!r})"


class _ObjectChanged(StoreError):
    """A read cannot go on with the version it started on (the object was replaced or deleted,
    or the server's answer cannot show it is the same); raised only after bytes were returned."""


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def _etag_of(resp: Any) -> str | None:
    """The response's ETag compared as an opaque string (quotes and a weak ``W/`` dropped)."""
    etag = (resp.headers.get("ETag") or "").strip()
    if etag[:2].upper() == "W/":
        etag = etag[2:]
    return etag.strip('"') or None


class _ResumingReader:
    """``read()`` over a GET response that survives a dropped connection (a server restart).

    On a transient error mid-body it reopens the object at the current offset with a ranged
    GET (through ``S3Store._call``'s retries) and checks that the rest comes from the same
    version: the request carries ``If-Match`` (a server that honours it answers 412), and the
    answer must show the first response's ETag and size and start at the offset (some servers
    ignore ``If-Match``, rclone among them). A changed or deleted object, or an answer that
    cannot show it is the same, raises ``_ObjectChanged``: the bytes of two versions are
    never spliced. Before any byte was returned it simply opens the object again. Bytes
    already returned are never re-read.
    """

    def __init__(self, store: S3Store, key: str, name: str, resp: Any) -> None:
        self._store, self._key, self._name = store, key, name
        self._pos = 0
        self._adopt(resp)
        self._stalled_since: float | None = None

    def _adopt(self, resp: Any) -> None:
        """Read from ``resp`` (a whole-object GET) from now on; it defines the version read."""
        self._resp = resp
        self._raw_etag: str | None = resp.headers.get("ETag")
        self._etag = _etag_of(resp)
        self._last_modified: str | None = resp.headers.get("Last-Modified")
        length = resp.headers.get("Content-Length")
        self._size = int(length) if length and length.isdigit() else None

    def read(self, n: int | None = -1) -> bytes:
        while True:
            try:
                data = self._resp.read() if n is None or n < 0 else self._resp.read(n)
            except Exception as exc:  # noqa: BLE001 - only transient errors are resumed
                if not is_transient(exc):
                    raise
                self._note_stall(exc)
                log.warning("%s: reading %r broke at byte %d (%s); resuming", self._store.uri, self._key, self._pos, type(exc).__name__)
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
        elif now - self._stalled_since >= self._store.retry_deadline_s:
            self._store._raise_failure(exc, f"reading {self._key!r} from byte {self._pos}", self._key)

    def _reopen(self) -> None:
        self._release()
        store, pos, what = self._store, self._pos, f"open_read {self._key!r} from byte {self._pos}"
        if pos == 0:  # nothing returned yet: any version will do
            self._adopt(store._call(what, lambda: store._client.get_object(store.bucket, self._name), self._key))
            return
        if self._size is not None and pos >= self._size:
            self._resp = io.BytesIO(b"")  # everything was read; only the end of the stream was lost
            return
        headers = {"If-Match": self._raw_etag} if self._raw_etag else None

        def get() -> Any:
            return store._client.get_object(store.bucket, self._name, offset=pos, request_headers=headers)

        try:
            resp = retry_call(get, is_transient=is_transient, what=f"{store.uri}: {what}", deadline_s=store.retry_deadline_s)
        except Exception as exc:  # noqa: BLE001 - a changed object, or translated like any failure
            failure = s3_failure(exc)
            if failure is not None and (failure.precondition_failed or failure.missing_key or failure.status == 416):
                raise self._changed(f"it changed on the server ({failure.describe()})") from None
            store._raise_failure(exc, what, self._key)
        self._resp = resp
        problem = self._differs(resp)
        if problem:
            self._release()
            raise self._changed(problem)

    def _differs(self, resp: Any) -> str | None:
        """Why ``resp`` is not the rest of the version being read (None if it is)."""
        etag = _etag_of(resp)
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

    def _changed(self, why: str) -> _ObjectChanged:
        return _ObjectChanged(
            self._store._scrub(f"{self._store.uri}: cannot resume reading {self._key!r} after {self._pos} bytes: {why}; read it again")
        )

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._resp.close()
            self._resp.release_conn()

    def close(self) -> None:
        self._release()
