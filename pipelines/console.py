"""What the run commands of both backends print: the step logs they hold back with ``--quiet``."""

from __future__ import annotations

import collections
import io


class LogTail(io.TextIOBase):
    """A text stream that keeps only its last ``lines`` lines (the step logs ``--quiet`` holds back)."""

    def __init__(self, lines: int) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *done, self._partial = (self._partial + text).split("\n")
        self.lines.extend(done)
        return len(text)

    def tail(self) -> list[str]:
        """The last lines written (the unfinished one too)."""
        return [*self.lines, *([self._partial] if self._partial else [])]


#: How many lines of the step logs a failed ``--quiet`` run shows.
QUIET_TAIL_LINES = 40
