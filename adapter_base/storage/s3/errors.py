"""What a failed S3 request means, by HTTP status and S3 error code, on any server, and how it is worded.

The ``minio`` client raises ``S3Error`` only for an ``application/xml`` error body;
other servers send the same XML as ``text/xml`` (rclone), or no body, or HTML from a
proxy, and ``minio`` raises ``InvalidResponseError`` or ``ServerError`` for those.
``s3_failure`` reads the status and code out of all three, so the store classifies a
missing key, rejected credentials or a throttled request the same way everywhere.
``ErrorMessages`` turns a final failure into the ``NotFoundError`` / ``StoreError`` the
caller sees, with a hint for a missing bucket or rejected credentials and never a credential.
"""

from __future__ import annotations

import html
import re
import traceback
from dataclasses import dataclass
from http.client import IncompleteRead
from typing import NoReturn

import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from ...errors import NotFoundError, StoreError
from .config import ENV_RETRY_DEADLINE

#: S3 error codes worth retrying (throttling and server-side trouble).
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
#: S3 error codes that mean "these credentials are not accepted".
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "InvalidSecurity",
        "AccessDenied",
        "AllAccessDisabled",
    }
)
#: S3 error codes of a missing object.
MISSING_KEY_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})

# Read with patterns, not an XML parser: the body may be any server's (or proxy's) text.
_CODE_IN_TEXT = re.compile(r"<Code>\s*([A-Za-z0-9.]+)\s*</Code>")
_MESSAGE_IN_TEXT = re.compile(r"<Message>([^<]{0,500})</Message>")


@dataclass(frozen=True)
class S3Failure:
    """An S3 request the server answered with an error: its HTTP status and S3 error code.

    Either may be unknown (``None``): a HEAD error has no body, a proxy's has no code.
    """

    status: int | None
    code: str | None
    message: str

    @property
    def missing_key(self) -> bool:
        """The object does not exist (``NoSuchKey``, or a 404 that names no other code)."""
        return self.code in MISSING_KEY_CODES or (self.status == 404 and self.code is None)

    @property
    def missing_bucket(self) -> bool:
        """The bucket does not exist."""
        return self.code == "NoSuchBucket"

    @property
    def rejected_credentials(self) -> bool:
        """The credentials are wrong, expired or not allowed (a credential code, or 401/403 without a code)."""
        return self.code in CREDENTIAL_CODES or (self.code is None and self.status in (401, 403))

    @property
    def precondition_failed(self) -> bool:
        """An ``If-Match``-style condition did not hold (the object changed)."""
        return self.code == "PreconditionFailed" or self.status == 412

    @property
    def transient(self) -> bool:
        """Throttling or server trouble: a retry may succeed."""
        return self.code in TRANSIENT_CODES or self.status in TRANSIENT_STATUS

    def describe(self) -> str:
        """``"<code>: <message>"`` with the status where there is no code."""
        what = self.code or (f"HTTP {self.status}" if self.status is not None else "error")
        return f"{what}: {self.message}" if self.message else what


def _parse_error_body(body: str | None) -> tuple[str | None, str]:
    """The ``Code`` and ``Message`` of an S3 XML error body (whatever its content type said)."""
    text = body or ""
    code = _CODE_IN_TEXT.search(text)
    message = _MESSAGE_IN_TEXT.search(text)
    return (code.group(1) if code else None), (html.unescape(message.group(1).strip()) if message else "")


def s3_failure(exc: BaseException) -> S3Failure | None:
    """The status and code of an error answer from an S3 server; ``None`` if ``exc`` is not one."""
    if isinstance(exc, S3Error):
        response = getattr(exc, "response", None)
        return S3Failure(getattr(response, "status", None), exc.code or None, exc.message or "")
    if isinstance(exc, InvalidResponseError):
        code, message = _parse_error_body(getattr(exc, "_body", None))
        status = getattr(exc, "_code", None)
        return S3Failure(status if isinstance(status, int) else None, code, message)
    if isinstance(exc, ServerError):
        return S3Failure(exc.status_code, None, "")
    return None


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry can cure: network errors, timeouts, HTTP 5xx/429, throttling.

    4xx answers (``NoSuchKey``, ``AccessDenied``, ...) and local errors are not transient.
    """
    failure = s3_failure(exc)
    if failure is not None:
        return failure.transient
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        reason = exc.reason
        if isinstance(reason, urllib3.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(reason):
            return False
        return True
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "CERTIFICATE_VERIFY_FAILED" not in str(exc)
    return isinstance(
        exc,
        (
            urllib3.exceptions.ProtocolError,
            urllib3.exceptions.TimeoutError,
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ResponseError,
            urllib3.exceptions.DecodeError,
            IncompleteRead,
            ConnectionError,
            TimeoutError,
        ),
    )


class ErrorMessages:
    """The errors one store raises: client failures translated, credentials scrubbed from every message."""

    def __init__(self, *, uri: str, endpoint: str, bucket: str, secrets: tuple[str, ...], retry_deadline_s: float) -> None:
        self.uri = uri
        self.endpoint = endpoint
        self.bucket = bucket
        self.retry_deadline_s = retry_deadline_s
        # Strings that must never leak into messages (see ``scrub``).
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def scrub(self, text: str) -> str:
        """``text`` with every credential replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def missing_bucket(self) -> str:
        """The bucket does not exist: how to create it."""
        return (
            f"S3 bucket {self.bucket!r} does not exist at {self.endpoint} (store {self.uri}); "
            f"create it first (e.g. `mc mb <alias>/{self.bucket}` or `aws s3 mb s3://{self.bucket}`) "
            f"or fix the bucket name in the store URI"
        )

    def rejected_credentials(self, code: str, what: str) -> str:
        """The server refused the credentials during ``what``: which variables to check."""
        return (
            f"S3 credentials were rejected by {self.endpoint} ({code}) during {what} on {self.uri}: "
            f"check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "
            f"and that they may access bucket {self.bucket!r}"
        )

    def translate(self, exc: BaseException, what: str, key: str | None, retried_s: float | None = None) -> BaseException:
        """``exc`` (the last failure of ``what``, retried for ``retried_s``, default the deadline) as ``NotFoundError`` / ``StoreError``."""
        failure = s3_failure(exc)
        if failure is not None and not failure.transient:
            if failure.missing_key and key is not None:
                return NotFoundError(f"{self.uri}: no object {key!r}")
            if failure.missing_bucket:
                return StoreError(self.missing_bucket())
            if failure.rejected_credentials:
                return StoreError(self.rejected_credentials(failure.code or f"HTTP {failure.status}", what))
            return StoreError(self.scrub(f"{self.uri}: {what} failed: {failure.describe()}"))
        if is_transient(exc) and retried_s == 0:  # a check that does not wait: the server did not answer
            reason = str(getattr(exc, "reason", None) or exc).rsplit(">: ", 1)[-1]
            return StoreError(
                self.scrub(f"{self.uri}: the S3 server at {self.endpoint} does not answer ({reason}): check AWS_ENDPOINT_URL and that the server runs")
            )
        if is_transient(exc):
            return StoreError(
                self.scrub(
                    f"{self.uri}: {what} failed at {self.endpoint} after retrying for "
                    f"{self.retry_deadline_s:g}s ({ENV_RETRY_DEADLINE}): {type(exc).__name__}: {exc}"
                )
            )
        return StoreError(self.scrub(f"{self.uri}: {what} failed: {type(exc).__name__}: {exc}"))

    def raise_translated(self, exc: BaseException, what: str, key: str | None, retried_s: float | None = None) -> NoReturn:
        """Raise ``translate(exc, ...)``, chained to ``exc`` unless it is a credentials error."""
        err = self.translate(exc, what, key, retried_s)
        failure = s3_failure(exc)
        cause = None if failure is not None and failure.rejected_credentials else exc
        # Error -> traceback -> frame -> error cycles (here, and minio's own) would keep every
        # caller's locals alive until the cyclic GC runs: a missed ``exists`` is common.
        traceback.clear_frames(exc.__traceback__)
        try:
            raise err from cause
        finally:
            del err, cause
