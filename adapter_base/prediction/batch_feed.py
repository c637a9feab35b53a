"""Feeding a run from reads in worker processes (``BatchReader``): how much each read takes and may hold.

Each worker has up to two reads of a batch each to do, as a PyTorch ``DataLoader``'s workers
prefetch two batches (fewer where ``prefetch_batches`` is lower, one a worker at least). Under a ``prepared_bytes_budget`` every read first reserves the bytes it may
hold (``allowance``: its items at twice the largest decoding cost seen lately, the whole budget for
the first item) and gives back what its arrays do not keep once it is back; the arrays' bytes are held
until their batch has been predicted. A read that would need more than it has, because its
images are larger than those seen so far, leaves the rest ``Deferred``: they are read again under
a reservation of their own size, and come after items listed later. So what the workers decode
never exceeds the budget.
"""

from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable

from ..concurrency import ByteBudget, Reservation
from ..entities import Item
from ..media import nbytes
from ..watchdog import watchdog
from . import batch_reader
from .batch_reader import BatchReader, Decoded, Deferred

#: Reads waiting in each worker's queue at once (the one it is doing and the next).
READS_PER_WORKER = 2


@dataclass
class _Read:
    items: list[Item]
    future: "Future[Any]"
    reservation: Reservation | None


class BatchFeed:
    """Items handed to worker processes a read at a time; each one prepared goes to ``admit``, each failure to ``fail``.

    ``admit(item, value, size)``: a prepared input holding ``size`` bytes (held in ``budget`` when
    there is one, until the caller ``release``s them). ``flush``: hand the partial batch on (its
    bytes come back once predicted); called while a read waits for room. ``stopped()``: the run
    is ending.
    """

    def __init__(
        self,
        reader: BatchReader,
        *,
        batch_size: int,
        prefetch_batches: int,
        budget: ByteBudget | None,
        timeout_s: float | None,
        admit: Callable[[Item, Any, int], None],
        fail: Callable[[Item, BaseException | str], None],
        flush: Callable[[], None],
        stopped: Callable[[], bool],
    ) -> None:
        self.reader = reader
        self.batch_size = batch_size
        # reads waiting at once: two a worker, fewer where fewer batches are to be prefetched (one a worker at least)
        self.max_reads = max(reader.processes, min(READS_PER_WORKER * reader.processes, prefetch_batches))
        self.budget = budget
        self.timeout_s = timeout_s
        self._admit, self._fail, self._flush, self._stopped = admit, fail, flush, stopped
        self._group: list[Item] = []
        self._pending: deque[_Read] = deque()
        self._deferred: deque[tuple[Item, int]] = deque()
        self._costs: deque[int] = deque(maxlen=64)  # decoding costs of the latest images
        self._turns = itertools.count()

    # --- what a read takes ------------------------------------------------------------------

    def read_size(self) -> int:
        """Items a read takes now: a batch, or fewer where the budget's share of a read holds fewer."""
        if self.budget is None:
            return self.batch_size
        if not self._costs:
            return 1  # learn an item's cost from one first
        share = self.budget.limit // self.max_reads
        return max(1, min(self.batch_size, share // self._estimate()))

    def allowance(self, n: int) -> int | None:
        """The bytes a read of ``n`` items reserves (None: no budget)."""
        if self.budget is None:
            return None
        if not self._costs:
            return self.budget.limit
        return min(self.budget.limit, n * self._estimate())

    def _estimate(self) -> int:
        # twice the largest recent cost: files of one size vary, and a deferred item is predicted
        # after items listed later than it
        return 2 * max(self._costs)

    # --- feeding ------------------------------------------------------------------------------

    def add(self, item: Item) -> bool:
        """Take ``item``; reads go out as groups fill. False once the run is stopping."""
        if self.budget is not None and not self._costs and self._pending:
            self._receive()  # the first read tells what an item costs: size the next ones from it
        self._group.append(item)
        if len(self._group) >= self.read_size():
            group, self._group = self._group, []
            return self._submit(group)
        return not self._stopped()

    def finish(self) -> None:
        """Read what is left and wait for every read (deferred items included)."""
        if self._group:
            group, self._group = self._group, []
            if not self._submit(group):
                return
        while (self._pending or self._deferred) and not self._stopped():
            if self._pending:
                self._receive()
            else:
                self._submit_deferred()

    def cancel(self) -> None:
        """Give up every read not received (their reservations go back)."""
        for read in self._pending:
            self.reader.drop(read.future)
            if read.reservation is not None:
                read.reservation.drop()
        self._pending.clear()

    def _submit(self, group: list[Item]) -> bool:
        """Send ``group`` to a worker once there is room for a read (deferred items go first)."""
        while len(self._pending) >= self.max_reads or self._deferred:
            if self._deferred and len(self._pending) < self.max_reads:
                if not self._submit_deferred():
                    return False
            else:
                self._receive()
        return self._send(group)

    def _submit_deferred(self) -> bool:
        """Send deferred items again: as many as a read takes, reserving their own costs."""
        group: list[Item] = []
        total = 0
        while self._deferred and len(group) < self.batch_size:
            item, cost = self._deferred[0]
            if group and self.budget is not None and total + cost > self.budget.limit // self.max_reads:
                break
            self._deferred.popleft()
            group.append(item)
            total += cost
        while len(self._pending) >= self.max_reads:
            self._receive()
        return self._send(group, total)

    def _send(self, group: list[Item], cost: int | None = None) -> bool:
        """Reserve ``cost`` bytes (default: ``allowance``) for ``group`` in the budget, then hand it to a worker."""
        reservation = None
        allowance = (cost if cost is not None else self.allowance(len(group))) if self.budget is not None else None
        if self.budget is not None and allowance is not None:
            # the reads in flight hold reservations only receiving them settles: never wait on them
            while self._pending and self.budget.held + allowance > self.budget.limit:
                self._receive()
                allowance = cost if cost is not None else self.allowance(len(group))
            reservation = self.budget.reserve(next(self._turns), allowance, cancelled=self._stopped, waiting=self._flush)
            if reservation is None:
                return False
        self._pending.append(_Read(group, self.reader.submit(group, allowance), reservation))
        return True

    def _receive(self) -> None:
        read = self._pending.popleft()
        timeout_s = self.timeout_s
        watch = watchdog().watch(timeout_s * len(read.items), lambda: _expire(read.future, timeout_s)) if timeout_s else None
        try:
            results = self.reader.take(read.future.result())
        except Exception as exc:  # noqa: BLE001 - the whole read failed (a worker died, the deadline passed)
            if isinstance(exc, BrokenProcessPool):
                batch_reader.discard()
                exc = RuntimeError("the process reading and decoding items died (out of memory?); the next run forks new ones")
            results = [exc] * len(read.items)
        finally:
            if watch is not None:
                watch.cancel()
        prepared: list[tuple[Item, Any, int]] = []
        for item, result in zip(read.items, results):
            if isinstance(result, Deferred):
                self._deferred.append((item, result.cost))
            elif isinstance(result, BaseException):
                self._fail(item, result)
            else:
                cost = result.cost if isinstance(result, Decoded) else None
                value = result.array if isinstance(result, Decoded) else result
                size = nbytes(value)
                self._costs.append(cost if cost is not None else size)
                prepared.append((item, value, size))
        if read.reservation is not None:
            read.reservation.shrink(sum(size for _, _, size in prepared))
            read.reservation.take()  # the arrays' bytes: held until their batch is predicted
        for item, value, size in prepared:
            self._admit(item, value, size)


def _expire(fut: "Future[Any]", timeout_s: float) -> None:
    """A read ran past its deadline: its items fail (the worker is left to finish)."""
    if not fut.done():
        try:
            fut.set_exception(TimeoutError(f"prepare_item_func did not return within prepare_timeout_s={timeout_s} (a batch read in a worker process)"))
        except Exception:  # noqa: BLE001 - it finished meanwhile
            pass
