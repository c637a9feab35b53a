"""``evaluate_model``: predict a subset, score it against ground truth, store metrics and a report.

Classification models get accuracy, per-label precision / recall / F1, macro and
micro averages, the top confusions and (up to 100 labels) the confusion matrix; box
models get AP equal to pycocotools COCOeval (predicted boxes clipped to the image
first). Metrics go to ``models/<id>/evaluations/<version>/<stamp>/metrics.json`` next
to ``report.html``, and a summary becomes the model's latest metrics. A part of the
report that cannot be rendered is noted in the report: it never costs the metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..concurrency import ordered_map
from ..entities import Annotation, Dataset, Filters, Item, Model, PredictionSet
from ..errors import AdapterContractError, AdapterError, ValidationError
from ..hooks import AdapterHooks
from ..metrics import classification_metrics, detection_metrics, headline, json_safe, render_html_report, render_markdown_summary
from ..metrics.mistakes import WorstMistakes, classification_mistake, detection_mistake
from ..metrics.report import filters_text
from ..prediction import PredictionReport
from ..registry import layout
from ._common import resolve_dataset, resolve_model
from .evaluation_report import find_baselines, label_warnings, report_context, show_mistakes
from .load import load_from_model
from .preflight import BOX_OUTPUTS, check_evaluation
from .predict import predict_dataset


log = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """The stored evaluation: metrics, the reports rendered from them, where they are, the prediction run behind them."""

    model: Model
    metrics: dict[str, Any]
    metrics_key: str
    report_key: str
    report_uri: str
    prediction: PredictionReport
    report_html: str = field(repr=False)
    report_markdown: str = field(repr=False)

    @property
    def summary(self) -> dict[str, Any]:
        """The headline numbers (as stored in the model's latest metrics)."""
        return headline(self.metrics)


def _top_classification(anns: list[Annotation]) -> Annotation | None:
    cls = [a for a in anns if a.type == "classification"]
    if not cls:
        return None
    return max(cls, key=lambda a: a.confidence if a.confidence is not None else 1.0)


def _top_label(anns: list[Annotation]) -> str | None:
    top = _top_classification(anns)
    return top.label if top else None


def _boxes(anns: list[Annotation], with_score: bool) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for a in anns:
        if a.type != "box":
            continue
        c = a.coordinates
        box = (c["left"], c["top"], c["right"], c["bottom"])
        out.append((a.label, box, a.confidence) if with_score else (a.label, box))
    return out


def _image_size(item: Item) -> tuple[float, float] | None:
    """The image's (width, height) in pixels from ``item.metadata``, None when not recorded."""
    size = (item.metadata.get("width"), item.metadata.get("height"))
    if size == (None, None):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf") for v in size):
        raise ValidationError("Item", "metadata", f"item {item.id}: width and height must be positive numbers, got {size}")
    return float(size[0]), float(size[1])  # type: ignore[arg-type]


def _curves_of(current: Model, version: int) -> dict[str, Any] | None:
    """The training curves kept on the model record, when ``version`` is the one they belong to (the current one)."""
    return current.metrics.get("curves") if current.version == version else None


def evaluate_model(
    adapter: AdapterHooks,
    model: Model | str,
    dataset: Dataset | str,
    *,
    filters: Filters | Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> EvaluationResult:
    """Predict the items matching ``filters`` (replacing this model's earlier predictions), then score them."""
    entity = resolve_model(adapter, model)
    ds = resolve_dataset(adapter, dataset)
    flt = Filters.coerce(filters)
    count = check_evaluation(adapter.registry, entity, ds, flt)  # nothing to score: refused before loading or predicting
    bound = adapter.bound_model
    if bound is None or bound.id != entity.id or bound.version != entity.version or adapter.model is None:
        load_from_model(adapter, entity)
    entity = adapter.bound_model
    assert entity is not None
    detection = entity.output_type in BOX_OUTPUTS

    predicted: dict[str, Any] = {}
    confidences: dict[str, float | None] = {}  # item id -> the confidence of its predicted label (classification)
    expected = "box" if detection else "classification"
    mismatched: dict[str, list[str]] = {}  # item id -> the annotation types it got instead

    def collect(item: Item, pset: PredictionSet) -> None:
        types = {a.type for a in pset.annotations}
        if types and expected not in types:
            mismatched[item.id] = sorted(types)
        if detection:
            predicted[item.id] = _boxes(pset.annotations, True)
        else:
            top = _top_classification(pset.annotations)
            predicted[item.id], confidences[item.id] = (top.label, top.confidence) if top else (None, None)

    kwargs.setdefault("expected_total", count)
    run = predict_dataset(adapter, ds, filters=flt, batch_size=batch_size, on_result=collect, progress=progress, kind="evaluate", **kwargs)
    if mismatched:
        first, types = next(iter(mismatched.items()))
        raise AdapterContractError(
            f"model {entity.name!r} has output_type {entity.output_type!r}, so evaluation scores its {expected} annotations, "
            f"but predict returned only {', '.join(types)} annotations on {len(mismatched)} of {len(predicted)} items "
            f"(item {first} the first): fix the adapter's predict or the model's output_type"
        )

    if run.fatal_error:  # scoring the items it reached would store metrics of an arbitrary part of the subset
        raise AdapterError(
            f"the prediction run {run.run_id} of model {entity.name} v{entity.version} stopped before it finished "
            f"({run.fatal_error}; {run.succeeded + run.skipped + run.failed} of {run.total} items listed so far had an outcome): "
            f"no metrics stored; its report is {adapter.registry.store.uri_of(layout.prediction_report(run.run_id))}"
        )
    registry = adapter.registry
    y_true: list[str] = []
    y_pred: list[str | None] = []
    images: list[tuple[list[Any], list[Any]]] = []
    without_gt = 0
    worst = WorstMistakes()
    candidates = (it for it in registry.iter_items(ds, flt) if it.id in predicted)
    for item, gt in ordered_map(registry.get_ground_truth, candidates, pool=registry.pool, window=4 * registry.io_workers):
        if isinstance(gt, BaseException):
            log.error("item %s: cannot read ground truth: %s", item.id, gt)
            without_gt += 1
            continue
        if detection:
            images.append((_boxes(gt.annotations, False), predicted[item.id], _image_size(item)))
            worst.add(detection_mistake(item.id, item.path, images[-1][0], predicted[item.id]))
        else:
            label = _top_label(gt.annotations)
            if label is None:
                without_gt += 1
                continue
            y_true.append(label)
            y_pred.append(predicted[item.id])
            worst.add(classification_mistake(item.id, item.path, label, predicted[item.id], confidences[item.id]))
    if run.failed and not run.succeeded:
        first = run.failures[0]
        raise AdapterContractError(
            f"every prediction of model {entity.name} v{entity.version} failed ({run.failed} of {run.total} items; the first, "
            f"item {first.item_id}{f' ({first.path})' if first.path else ''} at {first.stage}: {first.error}): nothing to score; "
            f"every failure is in the run report {registry.store.uri_of(layout.prediction_report(run.run_id))}"
        )
    if not (images if detection else y_true):
        raise ValidationError(
            "evaluate_model", "filters", f"no item of dataset {ds.name!r} matching {filters_text(flt.to_dict())} has both ground truth and a prediction"
        )

    labels = entity.labels or ds.labels
    if detection:
        predicted_labels = [box[0] for _, boxes, _ in images for box in boxes]
        true_labels = {box[0] for boxes, _, _ in images for box in boxes}
    else:
        predicted_labels, true_labels = y_pred, set(y_true)
    warnings = label_warnings(predicted_labels, set(ds.labels) | true_labels, ds)
    for warning in warnings:
        log.warning("evaluation of %s v%d: %s", entity.name, entity.version, warning)
    metrics = detection_metrics(images, labels) if detection else classification_metrics(y_true, y_pred, labels)
    metrics.update(
        model_id=entity.id,
        model_name=entity.name,
        model_version=entity.version,
        dataset_id=ds.id,
        dataset_name=ds.name,
        filters=flt.to_dict(),
        items_failed=run.failed,
        items_without_ground_truth=without_gt,
        prediction_run_id=run.run_id,
        warnings=warnings,
    )
    safe = json_safe(metrics)
    baselines, notes = find_baselines(registry, entity, ds, flt)
    html = render_html_report(
        safe,
        title=f"Evaluation of {entity.name} v{entity.version}",
        context=report_context(entity, ds, flt, run, notes, warnings),
        baselines=baselines,
        mistakes=show_mistakes(registry, ds, worst.worst()),
        mistakes_total=worst.total,
        curves=_curves_of(registry.get_model(entity.id), entity.version),
    )
    markdown = render_markdown_summary(safe)
    prefix = registry.write_evaluation(entity, safe, html, markdown)
    report_key = layout.evaluation_file(prefix, layout.EVALUATION_REPORT_HTML)
    summary = {**json_safe(headline(metrics)), "version": entity.version, "report": report_key, "dataset_id": ds.id}
    updated = registry.modify_model(entity, lambda latest: {"metrics": {**latest.metrics, "evaluation": summary}})
    adapter.bind_model(updated)
    log.info("evaluated %s v%d on %s: %s; report %s", entity.name, entity.version, ds.name, headline(metrics), registry.store.uri_of(report_key))
    return EvaluationResult(
        model=updated,
        metrics=safe,
        metrics_key=layout.evaluation_file(prefix, layout.EVALUATION_METRICS),
        report_key=report_key,
        report_uri=registry.store.uri_of(report_key),
        prediction=run,
        report_html=html,
        report_markdown=markdown,
    )
