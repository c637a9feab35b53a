"""``retry_call``: transient failures retried with capped backoff until the deadline, others raised at once."""

from __future__ import annotations

import time

import pytest

from adapter_base.storage.retry import retry_call


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
