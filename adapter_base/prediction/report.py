"""What a prediction run did: the report types, and the tally that fills a report from any stage's thread."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from ..entities import Item
from ..entities._base import utc_now
from ..progress import progress_bar
from ..secrets import redact

log = logging.getLogger(__name__)


@dataclass
class ItemFailure:
    """Why one item has no predictions from this run."""

    item_id: str
    stage: str  # list | input | prepare | predict | write
    error: str
    path: str | None = None


@dataclass
class PredictionReport:
    """What a prediction run did, item by item for the failures."""

    run_id: str
    model_id: str
    model_name: str
    model_version: int
    batch_size: int
    batch_size_used: int = 0
    total: int = 0
    succeeded: int = 0
    skipped: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    started_at: str = field(default_factory=utc_now)
    duration_s: float = 0.0
    fatal_error: str | None = None
    kind: str = "predict"  # predict | evaluate | embed
    dataset_id: str | None = None
    dataset_name: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Items that failed at any stage."""
        return len(self.failures)

    @property
    def ok(self) -> bool:
        """True when every item succeeded (or was already done)."""
        return not self.failures and self.fatal_error is None

    @property
    def items_per_second(self) -> float:
        """Items predicted and written per second of wall time."""
        return self.succeeded / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``failed`` and ``items_per_second``)."""
        d = asdict(self)
        d["failed"] = self.failed
        d["items_per_second"] = round(self.items_per_second, 3)
        return d

    def summary(self) -> str:
        """A few lines for people: counts, throughput, and each failure."""
        lines = [
            f"prediction run {self.run_id}: model {self.model_name} v{self.model_version}: "
            f"{self.succeeded} predicted, {self.skipped} already done, {self.failed} failed "
            f"of {self.total} in {self.duration_s:.1f}s ({self.items_per_second:.1f} items/s, batch size {self.batch_size_used})"
        ]
        for group in failure_groups(self.failures):
            f = group[0]
            if len(group) == 1:
                lines.append(f"  FAILED {f.item_id}{f' ({f.path})' if f.path else ''} at {f.stage}: {f.error}")
            else:  # one line for identical failures: a bug in the adapter fails every item the same way
                lines.append(f"  FAILED {len(group)} items at {f.stage}: {f.error} (first: {f.path or f.item_id})")
        if self.fatal_error:
            lines.append(f"  ABORTED: {self.fatal_error}")
        return "\n".join(lines)

    def check_accounted(self) -> None:
        """Mark the run failed unless every listed item ended written, skipped or failed."""
        unaccounted = self.total - self.succeeded - self.skipped - self.failed
        if unaccounted and self.fatal_error is None:
            self.fatal_error = f"{unaccounted} of {self.total} items have no outcome"


def failure_groups(failures: Sequence[ItemFailure]) -> list[list[ItemFailure]]:
    """The failures grouped by stage and error text, each group in run order, groups in order of their first failure."""
    groups: dict[tuple[str, str], list[ItemFailure]] = {}
    for f in failures:
        groups.setdefault((f.stage, f.error), []).append(f)
    return list(groups.values())


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an error, with secrets masked: how errors enter reports and logs."""
    return redact(f"{type(exc).__name__}: {exc}")


class Tally:
    """Counts each item's outcome into a report, from any stage's thread, and moves the progress bar."""

    def __init__(self, report: PredictionReport, *, progress: bool = False, total: int | None = None) -> None:
        self.report = report
        self._lock = threading.Lock()
        self._bar: Any = progress_bar(f"{report.kind} {report.model_name}", total, "item") if progress else None

    def listed(self) -> None:
        """One more item came from the source."""
        with self._lock:
            self.report.total += 1

    def skipped(self) -> None:
        """An item already has its predictions."""
        with self._lock:
            self.report.skipped += 1
        self._tick()

    def failed(self, item_id: str, stage: str, exc: BaseException | str, path: str | None = None) -> None:
        """An item failed at ``stage``; ``exc`` is the error or a message."""
        text = exc if isinstance(exc, str) else error_text(exc)
        # debug only: the run's summary lists each failure once (on stdout in the CLI, in the step's log in a pipeline)
        log.debug("item %s failed at %s: %s", item_id, stage, text)
        with self._lock:
            self.report.failures.append(ItemFailure(item_id=item_id, stage=stage, error=text, path=path))
        self._tick()

    def written(self, items: Sequence[Item], errors: Sequence[BaseException | None]) -> None:
        """The outcome of writing ``items``: None where an item's predictions were stored, else its error."""
        ok = 0
        for item, exc in zip(items, errors):
            if exc is None:
                ok += 1
            else:
                self.failed(item.id, "write", exc, item.path)
        with self._lock:
            self.report.succeeded += ok
        self._tick(ok)

    def close(self) -> None:
        """Close the progress bar."""
        if self._bar is not None:
            self._bar.close()

    def _tick(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)
