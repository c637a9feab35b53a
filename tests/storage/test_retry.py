"""``retry_call`` and the S3 error classification (transient or not, and what a failure means)."""

from __future__ import annotations

import time

import pytest
import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from adapter_base.storage.retry import retry_call
from adapter_base.storage.s3.errors import is_transient, s3_failure


class Transient(Exception):
    pass


class Fatal(Exception):
    pass


def _flaky(failures: int, exc: type[Exception] = Transient):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise exc(f"failure {calls['n']}")
        return "ok"

    return fn, calls


FAST = dict(base_delay_s=0.001, max_delay_s=0.01)


def test_transient_retried_until_success() -> None:
    fn, calls = _flaky(5)
    assert retry_call(fn, is_transient=lambda e: isinstance(e, Transient), what="t", deadline_s=5, **FAST) == "ok"
    assert calls["n"] == 6


def test_non_transient_raised_at_once() -> None:
    fn, calls = _flaky(5, Fatal)
    with pytest.raises(Fatal):
        retry_call(fn, is_transient=lambda e: isinstance(e, Transient), what="t", deadline_s=5, **FAST)
    assert calls["n"] == 1


def test_deadline_honoured() -> None:
    fn, calls = _flaky(10**9)
    start = time.monotonic()
    with pytest.raises(Transient):
        retry_call(fn, is_transient=lambda e: True, what="t", deadline_s=0.2, base_delay_s=0.01, max_delay_s=0.02)
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 1.5
    assert calls["n"] > 3


def test_zero_deadline_means_one_try() -> None:
    fn, calls = _flaky(1)
    with pytest.raises(Transient):
        retry_call(fn, is_transient=lambda e: True, what="t", deadline_s=0, **FAST)
    assert calls["n"] == 1


def test_backoff_grows_but_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    fn, _ = _flaky(8)
    retry_call(fn, is_transient=lambda e: True, what="t", deadline_s=60, base_delay_s=0.1, max_delay_s=1.0)
    assert len(sleeps) == 8
    assert all(0 <= s <= 1.0 for s in sleeps)
    assert max(sleeps) > min(sleeps)


def test_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    fn, _ = _flaky(2)
    with caplog.at_level("WARNING"):
        retry_call(fn, is_transient=lambda e: True, what="upload thing", deadline_s=5, **FAST)
    assert sum("upload thing" in r.getMessage() for r in caplog.records) == 2


# ----------------------------------------------------------- S3 classification
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
