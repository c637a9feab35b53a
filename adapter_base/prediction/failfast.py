"""When to stop a run early: its first batches all failed at ``predict`` with the same error.

Such a run is a bug in the adapter (or a model that cannot load its weights), not bad items:
going on would fail every item of the dataset the same way.
"""

from __future__ import annotations


class FailFast:
    """Watches the outcome of the first ``batches`` predict calls; trips when each failed with the same error.

    One call that succeeds, or an error that differs, disarms it for the rest of the run.
    ``batches=None`` never trips.
    """

    def __init__(self, batches: int | None) -> None:
        self.batches = batches
        self._seen = 0
        self._error: str | None = None
        self._armed = batches is not None

    def record(self, error: str | None) -> bool:
        """Note one predict call: ``error`` is the text every item of it failed with, None when it did not all fail.

        True when the run should stop now.
        """
        if not self._armed or self.batches is None:
            return False
        if self._seen >= self.batches:
            return True
        if error is None or (self._error is not None and error != self._error):
            self._armed = False
            return False
        self._error = error
        self._seen += 1
        return self._seen >= self.batches

    def reason(self) -> str:
        """The one line that says why the run stopped."""
        return (
            f"stopped early: the first {self._seen} predict batches all failed with the same error ({self._error}); "
            "fix the adapter and run again (--resume skips what was predicted), or pass --keep-going to predict every batch"
        )
