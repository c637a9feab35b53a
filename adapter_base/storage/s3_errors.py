"""What a failed S3 request means, by HTTP status and S3 error code, on any server.

The ``minio`` client raises ``S3Error`` only for an ``application/xml`` error body;
other servers send the same XML as ``text/xml`` (rclone), or no body, or HTML from a
proxy, and ``minio`` raises ``InvalidResponseError`` or ``ServerError`` for those.
``s3_failure`` reads the status and code out of all three, so the store classifies a
missing key, rejected credentials or a throttled request the same way everywhere.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from http.client import IncompleteRead

import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

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
