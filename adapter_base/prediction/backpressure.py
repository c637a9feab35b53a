"""How far the prepare stage runs ahead of ``predict``: an adaptive window under a byte budget."""

from __future__ import annotations

from collections import deque
from typing import Callable

from ..concurrency import ByteBudget, Reservation
from ..media import MIB
from .options import PredictionOptions


class Backpressure:
    """The prefetch policy: how many items to prepare at once, and how many prepared bytes may wait.

    The window (items being prepared at once) runs from two I/O tasks up to
    ``prefetch_batches`` batches. Adaptive, it starts narrow, widens by one task each time
    ``predict`` finds no prepared batch waiting and narrows by one each time a prepared
    batch finds the queue full: no more threads decode at once than keep ``predict`` fed
    (on a few cores every extra one takes CPU and GIL turns from the thread that calls
    ``predict``). Not adaptive, it stays at its widest.

    With a byte budget the window is also narrowed to what the budget has room for at the
    largest recent item size (one item at a time until a size is known); prepared items
    hold their bytes until their batch has been predicted. The default loader reserves
    what decoding an image will hold (read from its header) before it decodes, in listing
    order (``reserve``), and keeps the array's bytes of it once decoded.
    """

    def __init__(self, options: PredictionOptions) -> None:
        self.step = options.io_chunk
        self.widest = max(options.io_chunk, options.prefetch_batches * options.batch_size)
        self.narrowest = min(self.widest, 2 * options.io_chunk)
        self.adaptive = options.adaptive_prefetch
        self._window = self.narrowest if self.adaptive else self.widest
        limit = options.prepared_bytes_budget
        self.budget = ByteBudget(limit) if limit else None
        self._sizes: deque[int] = deque(maxlen=64)  # bytes of the latest prepared items

    def window(self) -> int:
        """Items to have in preparation now: the adaptive count, narrowed to what the byte budget has room for."""
        if self.budget is None:
            return self._window
        if not self._sizes:
            return 1  # learn an item's size from one before preparing many at once
        largest = max(self._sizes)
        room = (self.budget.limit - self.budget.held) // largest if largest else self._window
        return max(1, min(self._window, room))

    def starved(self) -> None:
        """``predict`` is waiting for input: prepare more at once."""
        self._resize(self.step)

    def backlogged(self) -> None:
        """Prepared batches are queueing up: fewer items in preparation will do."""
        self._resize(-self.step)

    def observe(self, size: int) -> None:
        """An item was prepared into ``size`` bytes (0 for one skipped or failed)."""
        self._sizes.append(size)

    def oversize(self, size: int) -> str | None:
        """Why an item of ``size`` bytes can never be admitted (larger than the whole budget), else None."""
        if self.budget is None or size <= self.budget.limit:
            return None
        return f"holds {size / MIB:.1f} MiB, more than prepared_bytes_budget ({self.budget.limit / MIB:.1f} MiB)"

    def fits(self, size: int) -> bool:
        """True when ``size`` more bytes can be held now without waiting."""
        return self.budget is None or self.budget.fits(size)

    def hold(self, size: int, *, cancelled: Callable[[], bool]) -> bool:
        """Hold ``size`` bytes for a prepared item, waiting for room; False (nothing held) once ``cancelled()``."""
        return self.budget is None or self.budget.acquire(size, cancelled=cancelled)

    def reserve(self, turn: int, size: int, *, cancelled: Callable[[], bool], waiting: Callable[[], None]) -> Reservation | None:
        """Reserve ``size`` bytes for item number ``turn`` of the run before it is decoded, after the items
        before it, waiting for room (``waiting()`` meanwhile, see ``ByteBudget.reserve``); None when there is
        no budget, once ``cancelled()``, or when the item was given up."""
        if self.budget is None:
            return None
        return self.budget.reserve(turn, size, cancelled=cancelled, waiting=waiting)

    def pass_turn(self, turn: int) -> None:
        """Item number ``turn`` reserves nothing (more): the items after it may reserve."""
        if self.budget is not None:
            self.budget.pass_turn(turn)

    def release(self, size: int) -> None:
        """A batch holding ``size`` bytes was predicted: its inputs are gone."""
        if self.budget is not None:
            self.budget.release(size)

    def _resize(self, step: int) -> None:
        if self.adaptive:
            self._window = max(self.narrowest, min(self.widest, self._window + step))
