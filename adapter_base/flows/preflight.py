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
from dataclasses import dataclass, field
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


@dataclass
class ItemCensus:
    """One pass over a dataset's listing: the items matching some filters, and what the dataset holds."""

    matched: int = 0
    total: int = 0
    unreadable: int = 0  # records that could not be read (the run fails them by name)
    subsets: dict[str, int] = field(default_factory=dict)
    folders: dict[str, int] = field(default_factory=dict)  # top-level path folders

    def subsets_text(self) -> str:
        """``"train 70, validation 15, test 15"``: the subsets with their item counts (train, validation, test first)."""
        order = [s for s in _USUAL_SUBSETS if s in self.subsets] + sorted(set(self.subsets) - set(_USUAL_SUBSETS))
        return ", ".join(f"{name} {self.subsets[name]}" for name in order) or "none"

    def folders_text(self, limit: int = 10) -> str:
        """``"test 15, train 70"``: the top-level folders of item paths with their item counts."""
        names = sorted(self.folders)
        shown = ", ".join(f"{name} {self.folders[name]}" for name in names[:limit])
        return (shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")) or "none"


#: Subsets listed first, in this order, when a census names what a dataset holds.
_USUAL_SUBSETS = ("train", "validation", "test")


def item_census(registry: Registry, dataset: Dataset, filters: Filters | Mapping[str, Any] | None) -> ItemCensus:
    """Count the items of ``dataset`` matching ``filters``, and its items per subset and top folder, in one pass."""
    flt = Filters.coerce(filters)
    census = ItemCensus()
    for _, item in registry.iter_item_results(dataset):
        census.total += 1
        if isinstance(item, BaseException):  # unreadable: the run lists it and fails it by name
            census.unreadable += 1
            continue
        for s in item.subsets:
            census.subsets[s] = census.subsets.get(s, 0) + 1
        top = item.path.split("/", 1)[0] if "/" in item.path else "."
        census.folders[top] = census.folders.get(top, 0) + 1
        if flt.matches(item):
            census.matched += 1
    return census


def no_match_message(dataset: Dataset, filters: Filters | Mapping[str, Any] | None, census: ItemCensus) -> str:
    """Why no item of ``dataset`` matches ``filters``, naming what the dataset holds (its subsets with their counts)."""
    flt = Filters.coerce(filters)
    if not census.total:
        return f"dataset {dataset.name} has no items (`model-adapter dataset import` adds some)"
    wanted = []
    if flt.subset is not None:
        wanted.append(f"in subset {flt.subset!r}")
    if flt.path_prefix is not None:
        wanted.append(f"under path {flt.path_prefix.strip('/')!r}")
    if flt.metadata:
        wanted.append(f"with metadata {flt.metadata}")
    if flt.item_ids is not None:
        wanted.append(f"among the {len(flt.item_ids)} item ids given")
    where = f"subsets: {census.subsets_text()}"
    if flt.path_prefix is not None:
        where += f"; top folders: {census.folders_text()}"
    return f"dataset {dataset.name} has no item {' '.join(wanted) or 'matching the filters'} ({where})"


def require_items(registry: Registry, dataset: Dataset, filters: Filters | Mapping[str, Any] | None, what: str) -> int:
    """Refuse when no item of ``dataset`` matches ``filters``, naming the subsets that exist; returns how many match."""
    census = item_census(registry, dataset, filters)
    if not census.matched and not census.unreadable:
        raise ValidationError(what, "filters", no_match_message(dataset, filters, census))
    return census.matched + census.unreadable


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
    census = item_census(registry, dataset, flt)
    if not matched:
        raise ValidationError(what, "filters", no_match_message(dataset, flt, census))
    shown = {k: v for k, v in flt.to_dict().items() if v not in (None, {}, [])}
    raise ValidationError(
        what, "filters", f"dataset {dataset.name}: none of the {matched} items matching {shown} has ground truth (subsets: {census.subsets_text()})"
    )


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
) -> int:
    """Before evaluating: annotated items to score, and (for a promotion gate) a metric that exists and a reachable threshold.

    Returns how many items match ``filters``."""
    if metric:
        check_metric(metric, model.output_type, model.labels or dataset.labels)
        check_threshold(metric, threshold)
    count = require_items(registry, dataset, filters, "evaluate")
    require_annotated(registry, dataset, filters, "evaluate")
    warn_label_mismatch(model, dataset)
    return count


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
