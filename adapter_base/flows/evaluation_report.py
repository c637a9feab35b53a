"""What an evaluation report shows besides the metrics: the worst mistakes with their previews,
the earlier evaluations to compare with, and the context lines under its title."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Iterable

from ..entities import Dataset, Filters, Model
from ..metrics.mistakes import BOX_THUMBNAIL_SIDE, THUMBNAIL_SIDE, Mistake, ShownMistake, thumbnail_png
from ..metrics.report import Baseline, filters_text
from ..prediction import PredictionReport
from ..registry import Registry

log = logging.getLogger(__name__)

#: The alias a report compares with besides the previous version.
PRODUCTION_ALIAS = "production"
#: Characters of a text item shown in place of a thumbnail.
TEXT_PREVIEW_CHARS = 300
#: Unknown predicted labels named in a warning (the rest are counted).
LABELS_NAMED = 5


def show_mistakes(registry: Registry, dataset: Dataset, mistakes: list[Mistake]) -> list[ShownMistake]:
    """Each mistake with its preview: an image thumbnail (boxes drawn), the start of a text item, or none.

    A preview that cannot be made (the item is gone, not an image) costs only that preview.
    """
    shown = []
    for mistake in mistakes:
        try:
            item = registry.get_item(dataset.id, mistake.item_id)
            data = registry.read_item(item)
            if item.mimetype.startswith("text/"):
                shown.append(ShownMistake(mistake, text=data[: 4 * TEXT_PREVIEW_CHARS].decode("utf-8", "replace")[:TEXT_PREVIEW_CHARS]))
                continue
            boxes = bool(mistake.true_boxes or mistake.predicted_boxes)
            uri = thumbnail_png(
                data, true_boxes=mistake.true_boxes, predicted_boxes=mistake.predicted_boxes, side=BOX_THUMBNAIL_SIDE if boxes else THUMBNAIL_SIDE
            )
            shown.append(ShownMistake(mistake, image_uri=uri))
        except Exception as exc:  # noqa: BLE001 - a preview is a convenience: the mistake is listed without it
            log.warning("evaluation report: no preview of item %s (%s): %s: %s", mistake.item_id, mistake.path, type(exc).__name__, exc)
            shown.append(ShownMistake(mistake))
    return shown


def find_baselines(registry: Registry, model: Model, dataset: Dataset, filters: Filters) -> tuple[list[Baseline], list[str]]:
    """The latest evaluations of the previous version and of the ``production`` version on the
    same dataset and filters (one column when they are the same version), and notes on the
    ones that were evaluated on other data (not compared)."""
    wanted: dict[int, list[str]] = {}
    if model.version > 1:
        wanted.setdefault(model.version - 1, []).append("previous")
    production = model.aliases.get(PRODUCTION_ALIAS)
    if production is not None and production != model.version:
        wanted.setdefault(production, []).append(PRODUCTION_ALIAS)
    baselines, notes = [], []
    for version, roles in sorted(wanted.items(), reverse=True):
        name = f"v{version} ({', '.join(roles)})"
        metrics = registry.latest_evaluation(model, version)
        if metrics is None:
            continue
        if metrics.get("dataset_id") != dataset.id or (metrics.get("filters") or {}) != filters.to_dict():
            notes.append(
                f"{name} was last evaluated on other data ({metrics.get('dataset_name', metrics.get('dataset_id'))}, "
                f"{filters_text(metrics.get('filters'))}): not compared"
            )
            continue
        baselines.append(Baseline(name, metrics))
    return baselines, notes


def label_warnings(predicted: Iterable[str | None], known: Iterable[str], dataset: Dataset) -> list[str]:
    """Warnings when predicted labels are not among the dataset's labels (``known``: its labels and
    those of its ground truth): a few of them named, and a stronger one when none match at all."""
    counts = Counter(label for label in predicted if label is not None)
    known = set(known)
    unknown = sorted((label for label in counts if label not in known), key=lambda label: (-counts[label], label))
    if not unknown:
        return []
    named = ", ".join(repr(label) for label in unknown[:LABELS_NAMED]) + (f" and {len(unknown) - LABELS_NAMED} more" if len(unknown) > LABELS_NAMED else "")
    share = sum(counts[label] for label in unknown)
    warnings = [
        f"{share} of {sum(counts.values())} predicted labels are not labels of dataset {dataset.name!r}: {named} "
        f"(its labels: {', '.join(sorted(known)[:LABELS_NAMED * 2]) or 'none'})"
    ]
    if len(unknown) == len(counts):
        warnings.append(
            "no predicted label is a label of the dataset, so every prediction counts as wrong: check that the model's "
            "labels (model show) name the same classes as the dataset's (dataset show)"
        )
    return warnings


def report_context(
    model: Model, dataset: Dataset, filters: Filters, run: PredictionReport, notes: list[str], warnings: list[str] = ()
) -> dict[str, str]:
    """The lines under the report's title: names and filters as text; ids last."""
    context = {
        "model": f"{model.name} v{model.version}",
        "dataset": dataset.name,
        "filters": filters_text(filters.to_dict()),
        "items": f"{run.succeeded} predicted, {run.failed} failed",
    }
    aliases = sorted(alias for alias, version in model.aliases.items() if version == model.version)
    if aliases:
        context["aliases"] = ", ".join(aliases)
    if notes:
        context["compared"] = "; ".join(notes)
    if warnings:
        context["warnings"] = "; ".join(warnings)
    context["ids"] = f"model {model.id}, dataset {dataset.id}, prediction run {run.run_id}"
    return context

