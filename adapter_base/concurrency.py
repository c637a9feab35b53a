"""Bounded, order-preserving parallel maps (the building block of every I/O fan-out) and one-off threads."""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator, TypeVar

from .watchdog import watchdog

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    pool: "ThreadPoolExecutor | WorkerPool",
    window: int | Callable[[], int],
    chunk: int = 1,
    timeout_s: float | None = None,
    timeout_message: str = "call did not return in time",
) -> Iterator[tuple[T, R | BaseException]]:
    """Yield ``(item, fn(item) or the exception it raised)`` in input order.

    At most ``window`` calls are in flight, so memory stays bounded however long
    ``items`` is, and ``items`` is consumed lazily. ``window`` may be a callable, read
    before each refill: the caller can then widen or narrow the fan-out as it goes
    (below ``chunk``, down to one call at a time).

    With ``chunk > 1`` each pool task runs ``fn`` on up to ``chunk`` consecutive items
    (``window`` still counts items). Fewer, larger tasks mean fewer futures, queue hand-offs
    and thread wake-ups, each of which costs the GIL: on a few cores that overhead slows
    whichever thread does the real work (the one calling ``predict``, say).

    With ``timeout_s``, a call of ``fn`` still running ``timeout_s`` seconds after it
    started yields ``TimeoutError(timeout_message)`` in its place and the items after it go
    on. ``pool`` must then be a ``WorkerPool``: the process's one watchdog thread keeps the
    deadlines, and a worker stuck in a call that never returns is replaced, so it holds
    neither the pool's capacity nor the process at exit.
    """
    if chunk <= 1 and not timeout_s:
        yield from _ordered_map_items(fn, items, pool=pool, window=window)
        return
    pending: deque[tuple[list[T], Future[list[R | BaseException]]]] = deque()
    it = iter(items)
    in_flight = 0
    exhausted = False
    while True:
        limit = window() if callable(window) else window
        size = max(1, min(chunk, limit))  # a window narrower than a chunk takes smaller tasks
        limit = max(limit, size)
        while not exhausted and in_flight + size <= limit:
            xs = list(islice(it, size))
            if len(xs) < size:
                exhausted = True
            if not xs:
                break
            if timeout_s:
                if not isinstance(pool, WorkerPool):
                    raise TypeError("ordered_map with timeout_s needs a WorkerPool (it replaces a worker stuck past its deadline)")
                fut = Future()
                _follow_cancel(pool.submit(_run_chunk_watched, _Chunk(fn, xs, float(timeout_s), timeout_message, pool, fut)), fut)
            else:
                fut = pool.submit(_run_chunk, fn, xs)
            pending.append((xs, fut))
            in_flight += len(xs)
        if not pending:
            return
        xs, fut = pending.popleft()
        in_flight -= len(xs)
        try:
            results = fut.result()
        except Exception as exc:  # noqa: BLE001 - handed to the caller as a value
            results = [exc] * len(xs)
        del fut
        # Handed on one at a time and forgotten here: a result the caller has let go of is not
        # kept alive by this generator while it waits for the next task.
        done = list(zip(xs, results))[::-1]
        del xs, results
        while done:
            yield done.pop()


def _run_chunk(fn: Callable[[T], R], xs: list[T]) -> list[R | BaseException]:
    out: list[R | BaseException] = []
    for x in xs:
        try:
            out.append(fn(x))
        except Exception as exc:  # noqa: BLE001 - one failing item does not fail its chunk
            out.append(exc)
    return out


class _Chunk:
    """One task's items under a per-call deadline (see ``_run_chunk_watched``)."""

    def __init__(self, fn: Callable[[T], R], xs: list[T], timeout_s: float, message: str, pool: "WorkerPool", fut: "Future[list[object]]") -> None:
        self.fn, self.xs, self.timeout_s, self.message, self.pool, self.fut = fn, xs, timeout_s, message, pool, fut
        self.lock = threading.Lock()
        self.results: list[object] = []
        self.abandoned = False
        self.worker: threading.Thread | None = None


def _run_chunk_watched(chunk: _Chunk) -> None:
    """In a pool worker: each call of ``chunk.fn`` under the process watchdog's deadline.

    A call past its deadline gets ``TimeoutError(message)`` in its place; the worker is left
    with the call (a thread cannot be killed) and replaced, and the items after it go on as
    a new task. Nothing waits on a timer: a call in time costs two watchdog lock operations.
    """
    chunk.worker = threading.current_thread()
    dog = watchdog()
    for i, x in enumerate(chunk.xs):
        w = dog.watch(chunk.timeout_s, lambda i=i: _expire_call(chunk, i))  # type: ignore[misc]
        try:
            result: object = chunk.fn(x)
        except Exception as exc:  # noqa: BLE001 - one failing item does not fail its chunk
            result = exc
        w.cancel()
        with chunk.lock:
            if chunk.abandoned:
                return
            chunk.results.append(result)
    chunk.fut.set_result(chunk.results)


def _expire_call(chunk: _Chunk, i: int) -> None:
    """On the watchdog thread: call ``i`` of ``chunk`` ran past its deadline."""
    with chunk.lock:
        if chunk.abandoned or len(chunk.results) != i:
            return  # it returned meanwhile
        chunk.abandoned = True
        done = [*chunk.results, TimeoutError(chunk.message)]
    if chunk.worker is not None:
        chunk.pool.replace(chunk.worker)
    rest = chunk.xs[i + 1 :]
    if not rest:
        chunk.fut.set_result(done)
        return
    tail: Future[list[object]] = Future()

    def joined(f: "Future[list[object]]") -> None:
        if f.cancelled():
            chunk.fut.cancel()
        else:
            chunk.fut.set_result(done + f.result())  # _run_chunk_watched itself never raises

    tail.add_done_callback(joined)
    _follow_cancel(chunk.pool.submit(_run_chunk_watched, _Chunk(chunk.fn, rest, chunk.timeout_s, chunk.message, chunk.pool, tail)), tail)


def _follow_cancel(task: "Future[object]", fut: "Future[T]") -> None:
    """``fut`` (resolved by the task itself) is cancelled when ``task`` is cancelled before it runs (a pool shut down)."""
    task.add_done_callback(lambda t: fut.cancel() if t.cancelled() else None)


class WorkerPool:
    """A thread pool of daemon workers, whose worker stuck in a call past its deadline is replaced.

    ``submit`` and ``shutdown`` as ``ThreadPoolExecutor``'s. Its threads are daemons and a
    replaced worker is never waited for, so a call that never returns holds neither the pool's
    capacity, nor ``shutdown(wait=True)``, nor the process at exit.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str = "worker") -> None:
        self._max_workers = max(1, int(max_workers))
        self._prefix = thread_name_prefix
        self._tasks: "queue.SimpleQueue[tuple[Future[object], Callable[..., object], tuple[object, ...]] | None]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers: set[threading.Thread] = set()
        self._serial = itertools.count()
        self._shut = False
        for _ in range(self._max_workers):
            self._start_worker()

    def _start_worker(self) -> None:
        t = threading.Thread(target=self._work, name=f"{self._prefix}_{next(self._serial)}", daemon=True)
        with self._lock:
            self._workers.add(t)
        t.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            task = self._tasks.get()
            if task is None:
                return
            fut, fn, args = task
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    fut.set_exception(exc)
            del task, fut, fn, args
            with self._lock:
                if me not in self._workers:
                    return  # replaced while its call ran past a deadline

    def submit(self, fn: Callable[..., R], *args: object) -> "Future[R]":
        """Run ``fn(*args)`` on a worker; its future."""
        if self._shut:
            raise RuntimeError("cannot submit to a pool that was shut down")
        fut: Future[R] = Future()
        self._tasks.put((fut, fn, args))  # type: ignore[arg-type]
        return fut

    def replace(self, worker: threading.Thread) -> None:
        """``worker`` is stuck in a call given up on: a new worker takes its place; it ends if the call ever returns."""
        with self._lock:
            if worker not in self._workers or self._shut:
                return
            self._workers.discard(worker)
        self._start_worker()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more tasks; with ``cancel_futures`` the queued ones are cancelled; with ``wait``, the live workers are joined."""
        with self._lock:
            self._shut = True
            workers = list(self._workers)
        if cancel_futures:
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task[0].cancel()
        for _ in workers:
            self._tasks.put(None)
        if wait:
            for t in workers:
                if t is not threading.current_thread():
                    t.join()


def _ordered_map_items(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    pool: ThreadPoolExecutor,
    window: int | Callable[[], int],
) -> Iterator[tuple[T, R | BaseException]]:
    pending: deque[tuple[T, Future[R]]] = deque()
    it = iter(items)
    exhausted = False
    while True:
        limit = max(1, window() if callable(window) else window)
        while not exhausted and len(pending) < limit:
            try:
                x = next(it)
            except StopIteration:
                exhausted = True
                break
            pending.append((x, pool.submit(fn, x)))
        if not pending:
            return
        x, fut = pending.popleft()
        try:
            result = fut.result()
        except Exception as exc:  # noqa: BLE001 - handed to the caller as a value
            result = exc
        del fut
        yield x, result
        del x, result  # not kept alive here while the next call runs


def map_all(fn: Callable[[T], R], items: Iterable[T], pool: ThreadPoolExecutor, window: int) -> list[R]:
    """``fn`` over ``items`` in parallel; their results in order, or the first error (in order).

    After a failure the items not started yet are skipped and those in flight are waited
    for, so no transfer of a failed call outlives it: a late upload could overwrite the
    files of the next attempt, a late download write into a directory given up on.
    """
    failed: list[BaseException] = []

    def guarded(x: T) -> R | None:
        return None if failed else fn(x)

    out: list[R] = []
    for _, result in ordered_map(guarded, items, pool=pool, window=window):
        if isinstance(result, BaseException):
            failed.append(result)
        elif not failed:
            out.append(result)  # type: ignore[arg-type]
    if failed:
        raise failed[0]
    return out


def in_thread(fn: Callable[[], T], name: str) -> "Future[T]":
    """Run ``fn`` on a new daemon thread (never on a shared pool: its callers may fill that pool)."""
    fut: Future[T] = Future()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            _settle(fut, exception=exc)
        else:
            _settle(fut, result=result)

    threading.Thread(target=run, name=name, daemon=True).start()
    return fut


def _settle(fut: "Future[T]", *, result: object = None, exception: BaseException | None = None) -> None:
    """Resolve ``fut`` unless a deadline already did (then what the late call returned is dropped)."""
    try:
        if exception is not None:
            fut.set_exception(exception)
        else:
            fut.set_result(result)  # type: ignore[arg-type]
    except InvalidStateError:
        pass


class ByteBudget:
    """Bytes held between two stages of a pipeline, kept under ``limit``.

    The consuming side ``acquire``s bytes (waiting until they fit, or until none of the held
    bytes are its own: one item alone always fits) and ``release``s them. Producers may
    ``reserve`` bytes ahead, before they make what will hold them, one at a time in turn
    order (0, 1, 2, ...): a turn waits for the turns before it, so bytes reserved by later
    work can never keep earlier work waiting. The consuming side later takes reserved bytes
    up as its own (``Reservation.take``).
    """

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.held = 0
        self.ahead = 0  # the part of ``held`` reserved and not taken up yet
        self._turn = 0  # every turn below this one has reserved or passed
        self._passed: set[int] = set()
        self._cond = threading.Condition()

    def fits(self, n: int) -> bool:
        """True when ``n`` more bytes can be acquired now without waiting."""
        with self._cond:
            return self._settled_room(n)

    def acquire(self, n: int, *, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Hold ``n`` bytes, waiting for room; False (nothing held) once ``cancelled()`` is true."""
        with self._cond:
            while not self._settled_room(n):
                if cancelled():
                    return False
                self._cond.wait(0.2)
            self.held += n
            return True

    def release(self, n: int) -> None:
        """Give back ``n`` bytes."""
        with self._cond:
            self.held = max(0, self.held - n)
            self._cond.notify_all()

    def reserve(
        self, turn: int, n: int, *, cancelled: Callable[[], bool] = lambda: False, waiting: Callable[[], None] = lambda: None
    ) -> "Reservation | None":
        """Hold ``n`` bytes ahead at ``turn``, once every earlier turn has had its go and ``n`` fits
        (or nothing is held); the turn then passes. None (nothing held) once ``cancelled()`` or when
        ``turn`` was passed without reserving. ``waiting()`` is called (without the lock) while this
        turn is next and has no room: whoever holds bytes that could be let go should let them go.
        """
        while True:
            with self._cond:
                if turn < self._turn or turn in self._passed:
                    return None
                if turn == self._turn and (self.held == 0 or self.held + n <= self.limit):
                    self.held += n
                    self.ahead += n
                    self._pass(turn)
                    return Reservation(self, n)
                if cancelled():
                    return None
                if turn != self._turn:
                    self._cond.wait(0.2)
                    continue
            waiting()
            with self._cond:
                if turn == self._turn and not (self.held == 0 or self.held + n <= self.limit):
                    self._cond.wait(0.1)

    def pass_turn(self, turn: int) -> None:
        """``turn`` reserves nothing (more): the turns after it may go. Passing a turn twice does nothing."""
        with self._cond:
            if turn >= self._turn:
                self._pass(turn)

    def _pass(self, turn: int) -> None:
        self._passed.add(turn)
        while self._turn in self._passed:
            self._passed.discard(self._turn)
            self._turn += 1
        self._cond.notify_all()

    def _settled_room(self, n: int) -> bool:
        return self.held == self.ahead or self.held + n <= self.limit

    def _unreserve(self, n: int, *, keep: bool) -> None:
        with self._cond:
            self.ahead -= n
            if not keep:
                self.held -= n
            self._cond.notify_all()


class Reservation:
    """Bytes reserved ahead in a ``ByteBudget``: shrunk to what the work really kept, then taken up
    by the consuming side (``take``) or given back (``drop``)."""

    def __init__(self, budget: ByteBudget, n: int) -> None:
        self.budget = budget
        self.bytes = n
        self.peak = n
        self._lock = threading.Lock()
        self._done = False

    def shrink(self, n: int) -> None:
        """Keep only ``n`` of the bytes reserved (no more than held now); the rest go back."""
        with self._lock:
            if not self._done and n < self.bytes:
                self.budget._unreserve(self.bytes - n, keep=False)
                self.bytes = n

    def take(self) -> int:
        """The consuming side holds these bytes from now on (it ``release``s them); how many."""
        with self._lock:
            if self._done:
                return 0
            self._done = True
            self.budget._unreserve(self.bytes, keep=True)
            return self.bytes

    def drop(self) -> None:
        """Give every byte still reserved back (nothing, after ``take`` or ``drop``)."""
        with self._lock:
            if not self._done:
                self._done = True
                self.budget._unreserve(self.bytes, keep=False)
                self.bytes = 0


