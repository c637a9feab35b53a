"""One thread per process that watches every deadline: the prepare, predict and load timeouts.

A call under a timeout registers its deadline (``Watchdog.watch``) and cancels it when it
returns: two lock operations, no thread of its own and no timed wait. The watchdog thread
sleeps until the earliest deadline; one that passes runs its ``on_expire`` callback there
(callbacks must be quick: resolve a future, start a thread). A call cannot be killed: the
callback lets its caller go on while the call is left running.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from concurrent.futures import Future, InvalidStateError
from typing import Callable, TypeVar

T = TypeVar("T")


class Watch:
    """A registered deadline; ``cancel`` it when the call returns in time."""

    __slots__ = ("deadline", "on_expire", "cancelled", "_dog")

    def __init__(self, deadline: float, on_expire: Callable[[], None], dog: "Watchdog") -> None:
        self.deadline = deadline
        self.on_expire: Callable[[], None] | None = on_expire
        self.cancelled = False
        self._dog = dog

    def cancel(self) -> None:
        """The call returned: its deadline no longer matters, nor what the callback holds."""
        if not self.cancelled:
            self.cancelled = True
            self.on_expire = None
            self._dog._cancelled()


class Watchdog:
    """Deadlines in a heap, run by one daemon thread started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._dead = 0  # cancelled watches still in the heap

    def _cancelled(self) -> None:
        with self._cond:
            self._dead += 1
            if self._dead > 64 and 2 * self._dead > len(self._heap):  # keep the heap the size of the live deadlines
                self._heap = [e for e in self._heap if not e[2].cancelled]
                heapq.heapify(self._heap)
                self._dead = 0

    def watch(self, timeout_s: float, on_expire: Callable[[], None]) -> Watch:
        """Call ``on_expire()`` (on the watchdog thread) ``timeout_s`` seconds from now, unless cancelled first."""
        w = Watch(time.monotonic() + float(timeout_s), on_expire, self)
        with self._cond:
            heapq.heappush(self._heap, (w.deadline, next(self._seq), w))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is w:  # earlier than what the thread sleeps until
                self._cond.notify()
        return w

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                    self._dead = max(0, self._dead - 1)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                w = heapq.heappop(self._heap)[2]
                callback = w.on_expire
                w.cancelled, w.on_expire = True, None
            if callback is not None:
                try:
                    callback()
                except Exception:  # noqa: BLE001 - one callback's failure must not stop the other deadlines
                    import logging

                    logging.getLogger(__name__).exception("a deadline callback failed")


_WATCHDOG = Watchdog()


def watchdog() -> Watchdog:
    """The process's watchdog."""
    return _WATCHDOG


def call_with_deadline(fn: Callable[[], T], timeout_s: float, name: str, message: str) -> T:
    """``fn()`` on a daemon thread named ``name``; ``TimeoutError(message)`` once it has run ``timeout_s`` seconds.

    A daemon thread, not an executor's: a hung call cannot be killed, and must keep neither a
    pool's worker nor the process at exit.
    """
    fut: Future[T] = Future()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller (dropped after the deadline)
            _resolve(fut, lambda: fut.set_exception(exc))
        else:
            _resolve(fut, lambda: fut.set_result(result))

    threading.Thread(target=run, name=name, daemon=True).start()
    w = _WATCHDOG.watch(timeout_s, lambda: _resolve(fut, lambda: fut.set_exception(TimeoutError(message))))
    try:
        return fut.result()
    finally:
        w.cancel()


def _resolve(fut: "Future[T]", settle: Callable[[], None]) -> None:
    """``settle()`` unless ``fut`` is already resolved (the call returned, or its deadline passed)."""
    try:
        settle()
    except InvalidStateError:
        pass
