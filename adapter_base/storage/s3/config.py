"""How an S3 store is configured: its ``s3://`` URI, the endpoint, and the settings read from the environment.

Nothing here talks to a server: bad settings are refused before a client is built, with a
``StoreError`` that never echoes a credential.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping
from urllib.parse import urlparse

from minio.credentials.providers import IamAwsProvider, Provider

from ...errors import InvalidKeyError, StoreError
from .. import check_store_uri
from ..keys import validate_key

MiB = 1024 * 1024
DEFAULT_ENDPOINT = "https://s3.amazonaws.com"
DEFAULT_PART_SIZE = 16 * MiB
#: The smallest part S3 accepts in a multipart upload (but the last).
MIN_PART_SIZE = 5 * MiB
DEFAULT_PARALLEL_UPLOADS = 4
DEFAULT_RETRY_DEADLINE_S = 60.0
DEFAULT_MAX_CONNECTIONS = 32

ENV_RETRY_DEADLINE = "MODEL_ADAPTER_S3_RETRY_DEADLINE"
ENV_PATH_STYLE = "MODEL_ADAPTER_S3_PATH_STYLE"
ENV_LIST_MODE = "MODEL_ADAPTER_S3_LIST_MODE"

#: ``auto`` picks ``walk`` on servers that list in directory-walk order (see ``listing``).
LIST_MODES = ("auto", "flat", "walk")

# urllib3 logs a multi-part warning for each of its own quick retries (``Retrying (Retry(total=1, ...))
# after connection broken by ...``); the store's ``retry_call`` reports its retries, and its final
# error says what failed, in one line each.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def env_flag(name: str) -> bool:
    """True if the variable ``name`` is ``1``, ``true``, ``yes`` or ``on`` (any case)."""
    return (os.environ.get(name) or "").strip().lower() in ("1", "true", "yes", "on")


def env_seconds(name: str, default: float) -> float:
    """The variable ``name`` as a number of seconds >= 0, ``default`` when unset or empty."""
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
    parsed = urlparse(check_store_uri(uri))  # never echo a URI with a credential in it
    if parsed.scheme != "s3":
        raise StoreError(f"not an s3:// store URI: {uri!r}")
    bucket = parsed.netloc
    if not bucket:
        raise StoreError(f"store URI {uri!r} names no bucket: use s3://<bucket>[/<prefix>]")
    if parsed.query or parsed.fragment:
        raise StoreError(f"store URI {uri!r} must not have a query or fragment")
    return bucket, parsed.path.strip("/")


def check_location(bucket: str, prefix: str) -> str:
    """The store's key prefix without surrounding slashes; ``StoreError`` for no bucket or a bad prefix."""
    if not bucket:
        raise StoreError("S3 store needs a bucket name: use s3://<bucket>[/<prefix>]")
    prefix = prefix.strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except InvalidKeyError as exc:
            raise StoreError(f"bad prefix in s3://{bucket}/{prefix}: {exc}") from None
    return prefix


def check_settings(part_size: int, list_mode: str) -> None:
    """``StoreError`` for a part size S3 refuses or an unknown list mode."""
    if part_size < MIN_PART_SIZE:
        raise StoreError(f"S3 part size must be at least 5 MiB, got {part_size}")
    if list_mode not in LIST_MODES:
        raise StoreError(f"S3 list mode must be one of {LIST_MODES}, got {list_mode!r}")


def check_credentials(access_key: str | None, secret_key: str | None) -> None:
    """``StoreError`` for an access key without its secret key (never echoing either)."""
    if access_key and not secret_key:
        raise StoreError("an S3 access key was given without a secret key (set AWS_SECRET_ACCESS_KEY)")


def credentials_provider(env: Mapping[str, str]) -> Provider | None:
    """An IAM provider (web identity or container role) when ``env`` has no access key but names one."""
    if env.get("AWS_ACCESS_KEY_ID"):
        return None
    if (
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    ):
        return IamAwsProvider()
    return None


def settings_from_env() -> dict[str, Any]:
    """The ``S3Store`` keyword arguments the environment sets.

    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (default AWS; the scheme decides TLS),
    ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` (else an IAM
    web-identity or container role when those variables exist, else anonymous),
    ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``MODEL_ADAPTER_S3_PATH_STYLE=true``,
    ``MODEL_ADAPTER_S3_RETRY_DEADLINE`` (seconds) and ``MODEL_ADAPTER_S3_LIST_MODE``.
    """
    env = os.environ
    return dict(
        endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT,
        access_key=env.get("AWS_ACCESS_KEY_ID") or None,
        secret_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        session_token=env.get("AWS_SESSION_TOKEN") or None,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        path_style=env_flag(ENV_PATH_STYLE),
        credentials=credentials_provider(env),
        retry_deadline_s=env_seconds(ENV_RETRY_DEADLINE, DEFAULT_RETRY_DEADLINE_S),
        list_mode=(env.get(ENV_LIST_MODE) or "auto").strip().lower(),
    )
