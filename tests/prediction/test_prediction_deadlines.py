"""Deadlines of prepare, predict and load: one watchdog thread, a pool that replaces a worker stuck past its deadline.

Real threads and real waits; no clock is faked.
"""

from __future__ import annotations

import threading
import time

import pytest

from adapter_base.concurrency import WorkerPool, ordered_map
from adapter_base.watchdog import call_with_deadline, watchdog


def test_a_call_past_its_deadline_times_out_alone_and_the_pool_keeps_its_size():
    release = threading.Event()

    def fn(x: int) -> int:
        if x == 5:
            release.wait(30)  # hangs until the test lets it go
        return x * 10

    pool = WorkerPool(2, thread_name_prefix="dl-test")
    try:
        t0 = time.monotonic()
        got = list(ordered_map(fn, range(20), pool=pool, window=8, chunk=4, timeout_s=0.5, timeout_message="fn too slow"))
        took = time.monotonic() - t0
        assert [x for x, _ in got] == list(range(20))  # in order, every item once
        assert [r for x, r in got if x != 5] == [x * 10 for x in range(20) if x != 5]  # the items after it in its chunk went on
        assert isinstance(got[5][1], TimeoutError) and str(got[5][1]) == "fn too slow"
        assert took < 10
        live = [t for t in threading.enumerate() if t.name.startswith("dl-test") and t.is_alive()]
        assert len(live) == 3  # two workers, plus the stuck one (left to its call), not a thread per chunk
    finally:
        release.set()
        pool.shutdown(wait=True)  # never waits for a replaced worker


def test_calls_in_time_leave_no_deadline_behind():
    pool = WorkerPool(2)
    try:
        results = [r for _, r in ordered_map(lambda x: x + 1, range(5000), pool=pool, window=64, chunk=4, timeout_s=300)]
    finally:
        pool.shutdown()
    assert results == list(range(1, 5001))
    dog = watchdog()
    assert len(dog._heap) < 200  # cancelled deadlines are dropped, not kept for 300 s each (memory at 100,000 items)


def test_a_late_result_is_dropped_quietly_after_its_deadline():
    errors: list[object] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        with pytest.raises(TimeoutError, match="slow hook"):
            call_with_deadline(lambda: time.sleep(0.6) or "late", 0.2, "hook", "slow hook")
        assert call_with_deadline(lambda: "fast", 5, "hook", "never") == "fast"
        time.sleep(0.8)  # the late call returns meanwhile
    finally:
        threading.excepthook = previous
    assert errors == []  # no "future already finished" error from the thread that came back late


def test_a_pool_shut_down_cancels_what_it_had_not_started():
    gate = threading.Event()
    pool = WorkerPool(1)
    first = pool.submit(gate.wait, 5)
    queued = pool.submit(lambda: "never")
    while not first.running():
        time.sleep(0.01)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert first.result(timeout=5) is True and queued.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(int)
