"""``evaluate``: score a committed version on a test subset and decide whether it earns promotion.

The metrics and reports come from ``evaluate_model`` (also stored with the model's
evaluations); the decision is ``metric >= threshold``, never for a non-finite value, and is
recorded in the model's ``metrics["promotion"]`` and the run's journal.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..entities import Filters
from ..errors import ValidationError, VersionConflictError
from ..flows.evaluate import EvaluationResult
from ..loading import make_adapter
from ..metrics import format_metric, json_safe, metric_value, scalar_metrics
from ..registry import Registry
from .shared import check_version, marks_failed
from .journal import record_step
from .model_ref import ModelRef

log = logging.getLogger(__name__)


@dataclass
class Evaluated:
    """What the evaluate step hands to KFP: the evaluation (metrics and reports), the chosen metric, the decision.

    ``value`` may be NaN (e.g. the recall of a label the test subset lacks); ``promote`` and
    ``reason`` are what leave the step as parameters (strict JSON).
    """

    result: EvaluationResult
    metric: str
    value: float
    promote: bool
    reason: str
    ref: ModelRef

    @property
    def scalars(self) -> dict[str, float]:
        """The finite numbers among the metrics, for a KFP ``Metrics`` artifact."""
        return scalar_metrics(self.result.metrics)


def promotion_decision(metric: str, value: float, threshold: float | None) -> tuple[bool, str]:
    """Whether ``value`` of ``metric`` earns promotion (``value >= threshold``), and why in words.

    A non-finite value (NaN, infinity) is never promoted; neither is anything without a threshold.
    """
    shown = format_metric(value, 4)
    if threshold is None:
        return False, f"{metric} = {shown}; no threshold given: not promoted"
    if not math.isfinite(value):
        return False, f"{metric} = {shown} is not a finite number: not promoted"
    if value >= threshold:
        return True, f"{metric} = {shown} >= threshold {threshold:g}: promoted"
    return False, f"{metric} = {shown} < threshold {threshold:g}: not promoted"


def square_confusion(confusion: Mapping[str, Any]) -> tuple[list[str], list[list[int]]]:
    """A confusion matrix (rows: true labels, columns: predicted) as square categories x categories (KFP's shape)."""
    rows_labels = [str(x) for x in confusion.get("labels", [])]
    cols_labels = [str(x) for x in confusion.get("columns", [])]
    categories = rows_labels + [c for c in cols_labels if c not in rows_labels]
    pos = {c: i for i, c in enumerate(categories)}
    matrix = [[0] * len(categories) for _ in categories]
    for r, row in enumerate(confusion.get("rows", [])):
        for c, count in enumerate(row):
            matrix[pos[rows_labels[r]]][pos[cols_labels[c]]] += int(count)
    return categories, matrix


def evaluate(
    adapter_path: str,
    ref: ModelRef,
    run_id: str,
    *,
    dataset: str = "",
    filters: Mapping[str, Any] | None = None,
    metric: str = "accuracy",
    store_uri: str = "",
    configuration: Mapping[str, Any] | None = None,
    batch_size: int = 0,
    threshold: float | None = None,
) -> Evaluated:
    """Evaluate ``ref``'s version on the items matching ``filters``, pick ``metric`` and decide promotion."""
    with Registry.open(store_uri or None) as registry:
        current = registry.get_model(ref.model_id)
        with marks_failed(registry, current, run_id, "evaluate", base=ref.version):
            check_version(current, ref, "evaluate")
            dataset_ref = dataset or current.dataset_id
            if not dataset_ref:
                raise ValidationError("evaluate", "dataset", f"model {current.name!r} names no dataset; pass one")
            adapter = make_adapter(registry, adapter_path, configuration=configuration)
            result = adapter.evaluate_model(
                current, dataset_ref, filters=Filters.coerce(dict(filters or {})), batch_size=batch_size or None, run_id=f"{run_id}-evaluate"
            )
            evaluated = result.metrics.get("model_version")
            if evaluated != ref.version:  # a newer version landed before evaluate_model read the model
                raise VersionConflictError(
                    f"evaluate: model {current.name!r} moved to version {evaluated} while this run was to evaluate version {ref.version}: "
                    "the newer version stays (start this run again)"
                )
            value = metric_value(result.metrics, metric)
            promote, reason = promotion_decision(metric, value, threshold)
            log.info("version %d: %s", ref.version, reason)
            decision = {"version": ref.version, "metric": metric, "value": value, "threshold": threshold, "promote": promote, "reason": reason}
            registry.modify_model(current, lambda latest: {"metrics": json_safe({**latest.metrics, "promotion": {"run_id": run_id, **decision}})})
            record_step(registry, run_id, "evaluate", model_id=current.id, **decision)
            return Evaluated(result, metric, value, promote, reason, ref)
