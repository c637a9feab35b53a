"""One retry helper for transient storage failures: exponential backoff with jitter."""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def retry_call(
    fn: Callable[[], T],
    *,
    is_transient: Callable[[BaseException], bool],
    what: str,
    deadline_s: float = 60.0,
    base_delay_s: float = 0.2,
    max_delay_s: float = 5.0,
) -> T:
    """Call ``fn`` until it succeeds, retrying transient errors until ``deadline_s`` passes.

    A non-transient error, or a transient one after the deadline, propagates.
    """
    start = time.monotonic()
    attempt = 0
    while True:
        try:
            return fn()
        except BaseException as exc:  # noqa: BLE001 - filtered by is_transient
            if not is_transient(exc):
                raise
            attempt += 1
            elapsed = time.monotonic() - start
            if elapsed >= deadline_s:
                raise
            delay = min(max_delay_s, base_delay_s * 2 ** min(attempt - 1, 10))
            delay = min(delay * (0.5 + random.random() / 2), max(0.0, deadline_s - elapsed))
            log.warning("%s failed (%s: %s); retry %d in %.1fs", what, type(exc).__name__, exc, attempt, delay)
            time.sleep(delay)
