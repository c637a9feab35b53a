"""Bounded, order-preserving parallel maps (the building block of every I/O fan-out) and one-off threads."""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    pool: ThreadPoolExecutor,
    window: int | Callable[[], int],
    chunk: int = 1,
) -> Iterator[tuple[T, R | BaseException]]:
    """Yield ``(item, fn(item) or the exception it raised)`` in input order.

    At most ``window`` calls are in flight, so memory stays bounded however long
    ``items`` is, and ``items`` is consumed lazily. ``window`` may be a callable, read
    before each refill: the caller can then widen or narrow the fan-out as it goes.

    With ``chunk > 1`` each pool task runs ``fn`` on up to ``chunk`` consecutive items
    (``window`` still counts items). Fewer, larger tasks mean fewer futures, queue hand-offs
    and thread wake-ups, each of which costs the GIL: on a few cores that overhead slows
    whichever thread does the real work (the one calling ``predict``, say).
    """
    if chunk <= 1:
        yield from _ordered_map_items(fn, items, pool=pool, window=window)
        return
    pending: deque[tuple[list[T], Future[list[R | BaseException]]]] = deque()
    it = iter(items)
    in_flight = 0
    exhausted = False
    while True:
        limit = max(window() if callable(window) else window, chunk)
        while not exhausted and in_flight + chunk <= limit:
            xs = list(islice(it, chunk))
            if len(xs) < chunk:
                exhausted = True
            if not xs:
                break
            pending.append((xs, pool.submit(_run_chunk, fn, xs)))
            in_flight += len(xs)
        if not pending:
            return
        xs, fut = pending.popleft()
        in_flight -= len(xs)
        try:
            results = fut.result()
        except Exception as exc:  # noqa: BLE001 - handed to the caller as a value
            results = [exc] * len(xs)
        yield from zip(xs, results)


def _run_chunk(fn: Callable[[T], R], xs: list[T]) -> list[R | BaseException]:
    out: list[R | BaseException] = []
    for x in xs:
        try:
            out.append(fn(x))
        except Exception as exc:  # noqa: BLE001 - one failing item does not fail its chunk
            out.append(exc)
    return out


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
            yield x, fut.result()
        except Exception as exc:  # noqa: BLE001 - handed to the caller as a value
            yield x, exc


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
            fut.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            fut.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return fut
