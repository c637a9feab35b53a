"""Object storage: one small interface, a local-directory and an S3 backend, chosen by URI."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from ..errors import StoreError
from ..secrets import holds_secret
from .base import ObjectInfo, ObjectStore
from .keys import join_key, validate_key, validate_prefix
from .local import LocalStore

ENV_STORE = "MODEL_ADAPTER_STORE"
ENV_HOME = "MODEL_ADAPTER_HOME"


def adapter_home() -> Path:
    """``$MODEL_ADAPTER_HOME``, default ``~/.model-adapter``."""
    return Path(os.environ.get(ENV_HOME) or "~/.model-adapter").expanduser()


def default_store_uri() -> str:
    """``$MODEL_ADAPTER_STORE``, else the embedded local store under the home directory."""
    return os.environ.get(ENV_STORE) or str(adapter_home() / "store")


def check_store_uri(uri: str) -> str:
    """``uri``, unless it embeds a credential (``user:password@``, or a secret variable's value).

    Refused before anything is opened or sent, with a ``StoreError`` that does not echo it.
    """
    if holds_secret(uri):
        raise StoreError(
            "the store URI must not embed credentials (user:password@, or anything before an '@'): set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a server other than AWS) in the environment instead"
        )
    return uri


def open_store(uri: str | None = None, *, create: bool = True, check: bool = False) -> ObjectStore:
    """Open a store from a URI: ``/path``, ``file:///path``, a relative path, or ``s3://bucket/prefix``.

    S3 endpoint and credentials come from the environment (``AWS_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``).

    ``create=False``: a local store's directory must exist (a mistyped path is an error, never
    a new empty store). ``check=True``: an S3 store checks its bucket and credentials now,
    with none of the long retries of later requests, so a missing bucket, a refused
    connection or rejected credentials fail at once with one line.
    """
    uri = check_store_uri(uri or default_store_uri())
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        from .s3 import S3Store

        store = S3Store.from_uri(uri)
        return store.open() if check else store
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            # file://data/store names host "data", path "/store": never the folder meant.
            raise StoreError(
                f"file:// store URI names host {parsed.hostname!r} (file://HOST/PATH): use file:///absolute/path, or a plain path for a relative one"
            )
        return LocalStore(parsed.path, create=create)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return LocalStore(uri, create=create)
    raise StoreError(f"unsupported store URI scheme {parsed.scheme!r} in {uri!r} (use a path, file:// or s3://)")


__all__ = [
    "ENV_HOME",
    "ENV_STORE",
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "adapter_home",
    "check_store_uri",
    "default_store_uri",
    "join_key",
    "open_store",
    "validate_key",
    "validate_prefix",
]
