"""Bounded, order-preserving parallel map: the one building block of every I/O fan-out."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    pool: ThreadPoolExecutor,
    window: int,
) -> Iterator[tuple[T, R | BaseException]]:
    """Yield ``(item, fn(item) or the exception it raised)`` in input order.

    At most ``window`` calls are in flight, so memory stays bounded however long
    ``items`` is, and ``items`` is consumed lazily.
    """
    pending: deque[tuple[T, Future[R]]] = deque()
    it = iter(items)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
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
