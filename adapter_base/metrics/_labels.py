"""Label ordering shared by the metric functions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def ordered_labels(given: Sequence[str] | None, seen: Iterable[str]) -> list[str]:
    """The given labels in their order (duplicates dropped), then the other seen labels sorted."""
    ordered = list(dict.fromkeys(given or ()))
    known = set(ordered)
    extras = sorted({label for label in seen if label not in known})
    return ordered + extras


def nan_mean(values: Iterable[float]) -> float:
    """Mean of the finite-or-infinite (non-NaN) values; NaN when there are none."""
    kept = [v for v in values if v == v]
    return sum(kept) / len(kept) if kept else float("nan")
