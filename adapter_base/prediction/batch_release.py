"""Letting go of predicted batches on a thread of its own, so that the thread calling ``predict`` does not pay for it.

Freeing a batch's inputs is not free: a block of arrays read in a worker process is unmapped
when its last array goes (the kernel frees every page of it, about 1.5 ms per batch of sixteen
256x256 images), large arrays are given back to the system page by page. Dropped on the
predicting thread, that time is taken from ``predict``; here the batch's items are dropped on
the releasing thread, and only then are their bytes given back to the run's byte budget.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

_STOP = object()


class BatchRelease:
    """``release(batch, held)``: empty the batch (a list) and give ``held`` bytes back with ``give_back``, on its own thread."""

    def __init__(self, give_back: Callable[[int], None]) -> None:
        self._give_back = give_back
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="batch-release", daemon=True)
        self._thread.start()

    def release(self, batch: list[Any], held: int) -> None:
        """The batch was predicted: its items go (the list is emptied on the releasing thread), then its bytes."""
        self._queue.put((batch, held))

    def close(self) -> None:
        """Release every batch handed over so far, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        while (entry := self._queue.get()) is not _STOP:
            batch, held = entry
            batch.clear()  # the items' last references go here, even if the caller still holds the list
            del batch, entry
            self._give_back(held)
