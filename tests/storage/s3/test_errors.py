"""``storage.s3.errors``: what a failed S3 request means on any server (transient or not, missing, refused), and how it is worded."""

from __future__ import annotations

import pytest
import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from adapter_base.errors import NotFoundError, StoreError
from adapter_base.storage.s3.errors import ErrorMessages, is_transient, s3_failure


class _Resp:
    def __init__(self, status: int) -> None:
        self.status = status


def _s3(code: str, status: int) -> S3Error:
    return S3Error(_Resp(status), code, "msg", "/b/k", "req", "host", "b", "k")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "exc",
    [
        _s3("SlowDown", 503),
        _s3("InternalError", 500),
        _s3("ServiceUnavailable", 503),
        _s3("RequestTimeout", 400),
        _s3("SomethingOdd", 502),
        ServerError("bad gateway", 502),
        InvalidResponseError(503, "text/html", "<html>busy</html>"),
        InvalidResponseError(400, "text/xml", "<Error><Code>SlowDown</Code></Error>"),
        InvalidResponseError(429, "text/plain", "too many requests"),
        urllib3.exceptions.MaxRetryError(None, "/x", urllib3.exceptions.NewConnectionError(None, "refused")),  # type: ignore[arg-type]
        urllib3.exceptions.ProtocolError("Connection aborted"),
        urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out"),  # type: ignore[arg-type]
        ConnectionResetError(104, "reset"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError("timed out"),
    ],
    ids=lambda e: type(e).__name__ + (f"-{e.code}" if isinstance(e, S3Error) else ""),
)
def test_transient_errors(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        _s3("NoSuchKey", 404),
        _s3("NoSuchBucket", 404),
        _s3("AccessDenied", 403),
        _s3("InvalidAccessKeyId", 403),
        _s3("SignatureDoesNotMatch", 403),
        _s3("NotImplemented", 501),
        ServerError("not implemented", 501),
        InvalidResponseError(403, "text/html", "no"),
        ValueError("bad bucket name"),
        FileNotFoundError(2, "no such file"),
        OSError(28, "No space left on device"),
        KeyboardInterrupt(),
    ],
    ids=lambda e: type(e).__name__ + (f"-{e.code}" if isinstance(e, S3Error) else ""),
)
def test_permanent_errors(exc: BaseException) -> None:
    assert not is_transient(exc)


# Error answers as servers send them: rclone's XML is ``text/xml`` (minio raises
# InvalidResponseError for anything but application/xml), proxies send HTML or nothing.
RCLONE_404 = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>NoSuchKey</Code>\n  <Resource>k</Resource>\n</Error>'
RCLONE_403 = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request '
    "signature we calculated does not match the signature you provided.</Message></Error>"
)


@pytest.mark.parametrize(
    ("exc", "meaning", "code"),
    [
        (_s3("NoSuchKey", 404), "missing_key", "NoSuchKey"),
        (InvalidResponseError(404, "text/xml; charset=utf-8", RCLONE_404), "missing_key", "NoSuchKey"),
        (InvalidResponseError(404, "text/html", "<html>Not Found</html>"), "missing_key", None),
        (InvalidResponseError(404, None, None), "missing_key", None),  # type: ignore[arg-type]
        (
            InvalidResponseError(404, "text/xml", "<Error><Code>NoSuchBucket</Code><Message>no bucket</Message></Error>"),
            "missing_bucket",
            "NoSuchBucket",
        ),
        (InvalidResponseError(403, "text/xml; charset=utf-8", RCLONE_403), "rejected_credentials", "SignatureDoesNotMatch"),
        (InvalidResponseError(403, "text/plain", "Forbidden"), "rejected_credentials", None),
        (InvalidResponseError(401, "application/json", '{"error": "unauthorized"}'), "rejected_credentials", None),
        (_s3("AccessDenied", 403), "rejected_credentials", "AccessDenied"),
        (InvalidResponseError(412, "text/xml", "<Error><Code>PreconditionFailed</Code></Error>"), "precondition_failed", "PreconditionFailed"),
        (ServerError("server failed with HTTP status code 412", 412), "precondition_failed", None),
        (InvalidResponseError(503, "text/xml", "<Error><Code>SlowDown</Code></Error>"), "transient", "SlowDown"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_failures_are_classified_by_status_and_code_whatever_the_body(
    exc: BaseException, meaning: str, code: str | None
) -> None:
    failure = s3_failure(exc)
    assert failure is not None and failure.code == code
    meanings = ("missing_key", "missing_bucket", "rejected_credentials", "precondition_failed", "transient")
    assert [m for m in meanings if getattr(failure, m)] == [meaning]


def test_a_failure_message_comes_from_the_body() -> None:
    failure = s3_failure(InvalidResponseError(403, "text/xml", RCLONE_403))
    assert failure is not None
    assert failure.describe().startswith("SignatureDoesNotMatch: The request signature we calculated")
    plain = s3_failure(InvalidResponseError(418, "text/plain", "teapot"))
    assert plain is not None and plain.describe() == "HTTP 418"


def test_network_errors_are_not_server_answers() -> None:
    assert s3_failure(ConnectionResetError(104, "reset")) is None
    assert s3_failure(urllib3.exceptions.ProtocolError("Connection broken")) is None


def _messages() -> ErrorMessages:
    return ErrorMessages(
        uri="s3://b/p", endpoint="http://127.0.0.1:9", bucket="b", secrets=("s3cr3t-value", "", "abc"), retry_deadline_s=7
    )


def test_a_missing_key_is_not_found_and_other_answers_are_store_errors_naming_the_store() -> None:
    words = _messages()
    assert isinstance(words.translate(_s3("NoSuchKey", 404), "get 'k'", "k"), NotFoundError)
    bucket = words.translate(_s3("NoSuchBucket", 404), "get 'k'", "k")
    assert isinstance(bucket, StoreError) and "does not exist" in str(bucket) and "mb" in str(bucket)
    refused = words.translate(InvalidResponseError(403, "text/xml", RCLONE_403), "put 'k'", "k")
    assert "SignatureDoesNotMatch" in str(refused) and "AWS_SECRET_ACCESS_KEY" in str(refused)
    down = words.translate(ConnectionRefusedError(111, "refused"), "stat 'k'", "k")
    assert "after retrying for 7s" in str(down) and "s3://b/p" in str(down)


def test_credentials_never_reach_a_message() -> None:
    words = _messages()
    err = words.translate(ValueError("signed with s3cr3t-value"), "put 'k'", "k")
    assert "s3cr3t-value" not in str(err) and "***" in str(err)
    assert words.scrub("abc") == "abc"  # shorter than 4 characters: not a credential worth masking
    with pytest.raises(StoreError) as info:
        words.raise_translated(InvalidResponseError(403, "text/plain", "s3cr3t-value"), "get 'k'", "k")
    assert info.value.__cause__ is None  # a credentials error does not chain the client's exception
