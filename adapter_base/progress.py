"""Our progress bars: one line each, with a total when it is known, and log lines printed above them.

While a bar is open, log records go through ``tqdm.write`` (``logging_redirect_tqdm``), so a
warning never splits the bar; a bar the adapter draws itself gets a line of its own below ours.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


class ProgressBar:
    """A tqdm bar that keeps log lines above itself until it is closed."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "item") -> None:
        self._logs = contextlib.ExitStack()
        self._logs.enter_context(logging_redirect_tqdm())
        self.bar = tqdm(desc=desc, total=total, unit=unit, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_total(self, total: int) -> None:
        """Change the total (e.g. once a run learns how many epochs it has)."""
        self.bar.total = total
        self.bar.refresh()

    def set_postfix(self, values: dict[str, Any]) -> None:
        """Show ``values`` after the bar (floats to 4 significant digits)."""
        self.bar.set_postfix({k: f"{v:#.4g}".rstrip(".") if isinstance(v, float) else v for k, v in values.items()}, refresh=False)

    def close(self) -> None:
        self.bar.close()
        self._logs.close()


def progress_bar(desc: str, total: int | None = None, unit: str = "item") -> ProgressBar:
    """A bar named ``desc`` counting ``unit`` up to ``total`` (None: unknown)."""
    return ProgressBar(desc, total, unit)
