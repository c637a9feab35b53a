"""What a failing ``predict`` call costs: out-of-memory errors halve the batch until it fits (and that
size is kept); any other error is narrowed down to the items that cause it by splitting the call in
halves, so one bad item fails alone, with its own error, and the rest of its batch is predicted."""

from __future__ import annotations

import logging
import math
from typing import Callable, Iterator, Sequence, TypeVar

from .report import error_text

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``MemoryError`` and accelerator OOM errors (e.g. ``torch.cuda.OutOfMemoryError``)."""
    return isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__ or "out of memory" in str(exc).lower()


def worth_isolating(exc: BaseException) -> bool:
    """Whether splitting a failed call can tell its bad items from its good ones.

    Not for a timeout (each retry would wait as long again, beside a call that never returned),
    nor for running out of memory (no item's fault: ``BatchHalving.retry_smaller`` deals with it).
    """
    return not isinstance(exc, TimeoutError) and not is_out_of_memory(exc)


class BatchHalving:
    """How many items each ``predict`` call gets: ``batch_size``, halved after each out-of-memory error.

    The smaller size sticks for the rest of the run (``size`` is the one in use). Not
    adaptive, or with one item left, an out-of-memory error fails its call like any other.

    A call that fails otherwise is split in halves and each half tried again, down to
    single items, at most ``log2(batch_size)`` levels deep: only the items that fail alone
    are reported failed (one bad item costs about ``2 * log2(batch_size)`` extra calls; a
    ``predict`` that fails on everything, ``2 * batch_size - 2``). ``isolate=False`` fails
    the whole call instead.
    """

    def __init__(self, batch_size: int, *, adaptive: bool, isolate: bool = True) -> None:
        self.size = batch_size
        self.adaptive = adaptive
        self.isolate = isolate
        self.levels = max(0, math.ceil(math.log2(max(1, batch_size))))

    def retry_smaller(self, exc: BaseException, tried: int) -> bool:
        """After a call on ``tried`` items raised ``exc``: True (with ``size`` halved) when a smaller call is worth a try."""
        if not (self.adaptive and tried > 1 and is_out_of_memory(exc)):
            return False
        self.size = max(1, tried // 2)
        log.warning("predict ran out of memory on %d items; retrying with batch size %d", tried, self.size)
        return True

    def run(self, batch: Sequence[T], call: Callable[[Sequence[T]], R]) -> Iterator[tuple[Sequence[T], R | BaseException]]:
        """``call`` on consecutive slices of ``batch`` of the current size; yields each slice with its result or error.

        Every item of ``batch`` is in exactly one yielded slice, in order.
        """
        i = 0
        while i < len(batch):
            chunk = batch[i : i + self.size]
            try:
                result: R | BaseException = call(chunk)
            except Exception as exc:  # noqa: BLE001 - handed to the caller with its slice
                if self.retry_smaller(exc, len(chunk)):
                    continue
                yield from self._narrow(chunk, exc, call, self.levels)
                i += len(chunk)
                continue
            yield chunk, result
            i += len(chunk)

    def _narrow(
        self, chunk: Sequence[T], exc: BaseException, call: Callable[[Sequence[T]], R], levels: int
    ) -> Iterator[tuple[Sequence[T], R | BaseException]]:
        """Split a failed ``chunk`` in halves and call each again (``levels`` more times at most); yields as ``run``."""
        if not self.isolate or levels <= 0 or len(chunk) <= 1 or not worth_isolating(exc):
            yield chunk, exc
            return
        log.info("predict failed on %d items (%s); retrying each half to find the items that fail", len(chunk), error_text(exc))
        mid = len(chunk) // 2
        for half in (chunk[:mid], chunk[mid:]):
            try:
                result: R | BaseException = call(half)
            except Exception as half_exc:  # noqa: BLE001 - narrowed further, or handed to the caller
                yield from self._narrow(half, half_exc, call, levels - 1)
                continue
            yield half, result
