"""The out-of-memory policy: halve the batch ``predict`` gets until it fits, and keep that size."""

from __future__ import annotations

import logging
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``MemoryError`` and accelerator OOM errors (e.g. ``torch.cuda.OutOfMemoryError``)."""
    return isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__ or "out of memory" in str(exc).lower()


class BatchHalving:
    """How many items each ``predict`` call gets: ``batch_size``, halved after each out-of-memory error.

    The smaller size sticks for the rest of the run (``size`` is the one in use). Not
    adaptive, or with one item left, an out-of-memory error fails its call like any other.
    """

    def __init__(self, batch_size: int, *, adaptive: bool) -> None:
        self.size = batch_size
        self.adaptive = adaptive

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
                result = exc
            yield chunk, result
            i += len(chunk)
