"""Checks made before any work starts: whatever can be known to fail is refused up front.

A run that would train, save a version and only then fail on a misspelt metric, a test
subset the dataset lacks, a threshold no metric can reach or a model with no weights is
refused here instead, with an error naming what is wrong, and nothing is touched: no
status change, no version, no prediction. A label mismatch between a model and a dataset
is not an error (it may be meant), but it is said, with both label sets.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping, Sequence

from ..concurrency import ordered_map
from ..entities import Dataset, Filters, Item, Model
from ..errors import ValidationError
from ..metrics import classification_metrics, detection_metrics, metric_value, scalar_metrics
from ..registry import Registry

log = logging.getLogger(__name__)

#: Output types scored as boxes (mAP); every other one is scored as classification.
BOX_OUTPUTS = ("box", "detection")
#: Metrics that count things rather than score them: a threshold on them is not bounded to [0, 1].
COUNT_METRICS = frozenset({"count", "support", "num_images", "num_pred_clipped", "max_detections"})


# --- the model has weights ---------------------------------------------------------------


def require_trained(adapter_cls: type, model: Model, *, allow_untrained: bool = False) -> None:
    """Refuse to predict with ``model`` when it has no saved version, unless the adapter or the caller says it may.

    An adapter that predicts well without training (a pretrained loader) says so with
    ``PREDICTS_UNTRAINED = True``; a caller with ``allow_untrained``.
    """
    if model.version > 0 or allow_untrained or getattr(adapter_cls, "PREDICTS_UNTRAINED", False):
        return
    raise ValidationError(
        "Model",
        "version",
        f"model {model.name} has no trained version; run `model-adapter train {model.name}` "
        f"(or pass --allow-untrained if {adapter_cls.__name__} predicts without training)",
    )


# --- labels ------------------------------------------------------------------------------


def label_mismatch(model: Model, dataset: Dataset) -> str | None:
    """Words for how the model's labels differ from the dataset's, or None when they agree (or either has none)."""
    ours, theirs = list(model.labels), list(dataset.labels)
    if not ours or not theirs or set(ours) == set(theirs):
        return None
    only_model = sorted(set(ours) - set(theirs))
    only_data = sorted(set(theirs) - set(ours))
    parts = []
    if only_model:
        parts.append(f"only the model has {_shown(only_model)}")
    if only_data:
        parts.append(f"only the dataset has {_shown(only_data)}")
    return (
        f"the labels of model {model.name} and dataset {dataset.name} differ ({'; '.join(parts)}): "
        f"model labels {_shown(sorted(ours))}, dataset labels {_shown(sorted(theirs))}"
    )


def warn_label_mismatch(model: Model, dataset: Dataset) -> str | None:
    """Log a warning when the labels differ (see ``label_mismatch``); returns its text."""
    text = label_mismatch(model, dataset)
    if text:
        log.warning("%s; predictions of a label the dataset lacks never count as correct", text)
    return text


def _shown(labels: Sequence[str], limit: int = 20) -> str:
    head = ", ".join(labels[:limit])
    return f"[{head}{f', ... ({len(labels)} in all)' if len(labels) > limit else ''}]"


# --- items -------------------------------------------------------------------------------


def require_annotated(registry: Registry, dataset: Dataset, filters: Filters | Mapping[str, Any] | None, what: str) -> None:
    """Refuse when no item of ``dataset`` matching ``filters`` has ground truth (stops at the first one that has)."""
    flt = Filters.coerce(filters)

    def annotated(item: Item) -> bool:
        return len(registry.get_ground_truth(item)) > 0

    matched = 0
    found = False
    results = ordered_map(annotated, registry.iter_items(dataset, flt), pool=registry.pool, window=2 * registry.io_workers)
    try:
        for _, result in results:
            matched += 1
            if result is True:
                found = True
                break
    finally:
        results.close()
    if found:
        return
    shown = {k: v for k, v in flt.to_dict().items() if v not in (None, {}, [])}
    why = f"no item matches {shown or 'all items'}" if not matched else f"none of the {matched} items matching {shown} has ground truth"
    raise ValidationError(what, "filters", f"dataset {dataset.name}: {why} (its subsets: {_subsets(registry, dataset)})")


def _subsets(registry: Registry, dataset: Dataset) -> str:
    """``"test 4, train 6"``: the dataset's subsets and their item counts."""
    names: dict[str, int] = {}
    for item in registry.iter_items(dataset):
        for s in item.subsets:
            names[s] = names.get(s, 0) + 1
    return ", ".join(f"{name} {count}" for name, count in sorted(names.items())) or "none"


# --- metrics and the promotion gate ------------------------------------------------------


def _sample_metrics(output_type: str, labels: Sequence[str]) -> dict[str, Any]:
    """Metrics of the shape an evaluation of this output type produces, for these labels (from a tiny perfect run)."""
    names = list(labels) or ["label"]
    if output_type in BOX_OUTPUTS:
        boxes = [(label, (0.0, 0.0, 2.0, 2.0)) for label in names]
        return detection_metrics([(boxes, [(*box, 0.9) for box in boxes], None)], names)
    return classification_metrics(names, names, names)


def check_metric(metric: str, output_type: str, labels: Sequence[str]) -> None:
    """Refuse a metric name an evaluation of ``output_type`` never produces, naming the ones it does."""
    sample = _sample_metrics(output_type, labels)
    try:
        metric_value(sample, metric)
    except ValidationError:
        kind = "box" if output_type in BOX_OUTPUTS else "classification"
        available = ", ".join(sorted(scalar_metrics(sample)))
        raise ValidationError(
            "evaluation", "metric", f"no metric {metric!r} for a {kind} model (output_type {output_type!r}); available: {available}, or a dotted path such as per_label.<label>.f1"
        ) from None


def check_threshold(metric: str, threshold: float | None) -> None:
    """Refuse a threshold that is not a finite number, or outside [0, 1] for a score (every metric but counts)."""
    if threshold is None:
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValidationError("evaluation", "threshold", f"must be a finite number, got {threshold!r}")
    if metric.rsplit(".", 1)[-1] not in COUNT_METRICS and not 0.0 <= threshold <= 1.0:
        raise ValidationError("evaluation", "threshold", f"{metric} is a score in [0, 1]; threshold {threshold:g} can never be reached as meant")


# --- the checks of each entry point ------------------------------------------------------


def check_training(registry: Registry, model: Model, dataset: Dataset) -> None:
    """Before training: the model names subsets, each has annotated items in ``dataset``, and the labels overlap."""
    if not model.subsets:
        raise ValidationError("Model", "subsets", f"model {model.name!r} names no subsets to train on (e.g. {{'train': {{'subset': 'train'}}}})")
    for name in model.subsets:
        require_annotated(registry, dataset, model.subset_filters(name), f"Model.subsets.{name}")
    if model.labels and dataset.labels and not set(model.labels) & set(dataset.labels):
        raise ValidationError(
            "Model", "labels", f"{label_mismatch(model, dataset)}: they share no label, so nothing could be learned; fix the model's labels or the dataset"
        )
    warn_label_mismatch(model, dataset)


def check_evaluation(
    registry: Registry,
    model: Model,
    dataset: Dataset,
    filters: Filters | Mapping[str, Any] | None,
    *,
    metric: str | None = None,
    threshold: float | None = None,
) -> None:
    """Before evaluating: annotated items to score, and (for a promotion gate) a metric that exists and a reachable threshold."""
    if metric:
        check_metric(metric, model.output_type, model.labels or dataset.labels)
        check_threshold(metric, threshold)
    require_annotated(registry, dataset, filters, "evaluate")
    warn_label_mismatch(model, dataset)


def check_train_run(
    registry: Registry,
    model: Model,
    dataset: Dataset,
    test_filters: Filters | Mapping[str, Any] | None,
    metric: str,
    threshold: float | None,
) -> None:
    """Everything a train -> evaluate -> promote run needs, checked before it starts."""
    check_metric(metric, model.output_type, model.labels or dataset.labels)
    check_threshold(metric, threshold)
    check_training(registry, model, dataset)
    require_annotated(registry, dataset, test_filters, "evaluate")
