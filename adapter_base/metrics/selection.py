"""Picking numbers out of an evaluation's metrics: the headline, one named metric, the scalars worth logging.

Stored metrics carry NaN / infinity as the strings ``json_safe`` writes; ``metric_value``
reads them back as floats, and ``finite_numbers`` / ``scalar_metrics`` keep only finite ones
(what a KFP ``Metrics`` artifact may hold).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from ..errors import ValidationError
from .finite import from_json_safe


def headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers worth a glance: accuracy and macro-F1, or mAP figures, and the item count."""
    if metrics.get("task") == "detection":
        out = {k: metrics.get(k) for k in ("map", "map50", "map75")}
    else:
        out = {"accuracy": metrics.get("accuracy"), "macro_f1": (metrics.get("macro") or {}).get("f1")}
    out["count"] = metrics.get("count", metrics.get("num_images"))
    return out


def finite_numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries of ``values`` that are finite numbers (not bools), as floats."""
    return {
        key: float(value)
        for key, value in values.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Finite numbers worth a KFP ``Metrics`` entry: top-level numbers, headline, macro/micro averages."""
    out = {**finite_numbers(metrics), **finite_numbers(headline(metrics))}
    for avg in ("macro", "micro"):
        out.update(finite_numbers({f"{avg}_{key}": value for key, value in (metrics.get(avg) or {}).items()}))
    out.pop("model_version", None)
    return out


def metric_value(metrics: Mapping[str, Any], name: str) -> float:
    """A number from evaluation metrics: a top-level key (``accuracy``, ``map``), a headline
    key (``macro_f1``) or a dotted path (``macro.f1``, ``per_label.3.f1``).

    A metric stored as NaN comes back as a NaN float, not as a missing metric.
    """
    candidates: list[Any] = []
    if name in metrics:
        candidates.append(metrics[name])
    head = headline(metrics)
    if name in head:
        candidates.append(head[name])
    cur: Any = metrics
    for part in name.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    candidates.append(cur)
    for value in map(from_json_safe, candidates):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    available = ", ".join(sorted(scalar_metrics(metrics)))
    raise ValidationError("evaluation", "metric", f"no numeric metric {name!r} (available: {available})")
