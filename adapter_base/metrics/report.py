"""Human-facing renderings of a metrics dict: a self-contained HTML page and a markdown summary.

The page leads with what people look at first: the summary (side by side with earlier
evaluations, with deltas), then the worst mistakes with thumbnails, then per-label scores
and the confusion matrix (or, for many labels, the top confusions).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adapter_base.metrics.finite import format_metric, from_json_safe
from adapter_base.metrics.mistakes import ShownMistake

log = logging.getLogger(__name__)

_DISPLAY_NAMES = {
    "count": "samples",
    "num_images": "images",
    "map": "mAP@[.50:.95]",
    "map50": "mAP@.50",
    "map75": "mAP@.75",
    "ap": "AP@[.50:.95]",
    "ap50": "AP@.50",
    "ap75": "AP@.75",
    "num_gt": "ground truths",
    "num_pred": "predictions",
    "num_pred_clipped": "predicted boxes clipped to the image",
    "max_detections": "detections scored per image and label",
    "items_failed": "items failed",
    "items_without_ground_truth": "items without ground truth",
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td.label, th.label { text-align: left; }
dl.context { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.context dt { font-weight: bold; }
dl.context dd { margin: 0; }
img { max-width: 100%; }
p.error { color: #a00; }
p.note { color: #555; font-size: 0.9em; max-width: 60em; }
div.mistakes { display: flex; flex-wrap: wrap; gap: 1em; margin: 0.5em 0 1.5em; }
div.mistakes figure { margin: 0; width: min-content; min-width: 128px; font-size: 0.85em; overflow-wrap: anywhere; }
div.mistakes img { image-rendering: pixelated; border: 1px solid #ccc; display: block; max-width: none; }
div.mistakes pre { white-space: pre-wrap; background: #f6f6f6; padding: 0.3em; margin: 0; max-height: 8em; overflow: hidden; }
span.true { color: #007a00; } span.predicted { color: #c00000; }
"""

#: Keys ``evaluate_model`` adds to the metrics to say what was evaluated: shown as context, not as metrics.
_CONTEXT_KEYS = frozenset(
    {"model_id", "model_name", "model_version", "dataset_id", "dataset_name", "filters", "prediction_run_id"}
)


@dataclass(frozen=True)
class Baseline:
    """An earlier evaluation to compare with: its column name (e.g. ``v2 (previous)``) and its metrics."""

    name: str
    metrics: Mapping[str, Any]


def filters_text(filters: Mapping[str, Any] | None) -> str:
    """Filters as a person reads them: ``subset=test, path_prefix=cats`` (``all items`` when empty)."""
    parts: list[str] = []
    for key, value in (filters or {}).items():
        if value in (None, {}, []):
            continue
        if key == "metadata" and isinstance(value, Mapping):
            parts.extend(f"metadata.{k}={v}" for k, v in value.items())
        elif key == "item_ids" and isinstance(value, (list, tuple)):
            parts.append(f"{len(value)} chosen item{'s' if len(value) != 1 else ''}")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts) or "all items"

_MAX_ANNOTATED_CELLS = 30
_MAX_TICK_LABELS = 100
_MAX_LEGEND_ENTRIES = 20


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _display(key: str) -> str:
    return _DISPLAY_NAMES.get(key, key)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (int, float, str, np.generic))


def _summary_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Top-level scalars and one level of scalar dicts (e.g. macro/micro), task excluded."""
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        if key == "task" or key in _CONTEXT_KEYS:
            continue
        if _is_scalar(value):
            rows.append((_display(key), value))
        elif isinstance(value, Mapping) and value and all(_is_scalar(v) for v in value.values()):
            rows.extend((f"{key} {_display(sub)}", v) for sub, v in value.items())
    return rows


def _per_label_columns(per_label: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for row in per_label.values() for key in row))


def _png_data_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _new_figure(width: float, height: float) -> Any:
    # A bare Figure on an Agg canvas is never registered with pyplot, so nothing
    # global needs closing and rendering is safe off the main thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def confusion_matrix_png(confusion: Mapping[str, Any]) -> str | None:
    """The confusion matrix as a PNG data URI (colour = share of the true label), or None if empty."""
    rows_labels = [str(x) for x in confusion.get("labels", [])]
    col_labels = [str(x) for x in confusion.get("columns", rows_labels)]
    counts = np.asarray(confusion.get("rows", []), dtype=np.float64)
    if not rows_labels or counts.size == 0:
        return None
    counts = counts.reshape(len(rows_labels), len(col_labels))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    side = min(max(0.45 * max(len(rows_labels), len(col_labels)) + 3, 4), 24)
    fig = _new_figure(side + 1, side)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(image, ax=ax, label="share of true label")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if max(len(rows_labels), len(col_labels)) <= _MAX_TICK_LABELS:
        # parse_math=False: labels are data, "$" must not start mathtext.
        ax.set_xticks(range(len(col_labels)), labels=col_labels, rotation=90, parse_math=False)
        ax.set_yticks(range(len(rows_labels)), labels=rows_labels, parse_math=False)
    if max(len(rows_labels), len(col_labels)) <= _MAX_ANNOTATED_CELLS:
        for (i, j), count in np.ndenumerate(counts):
            colour = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, f"{count:.0f}", ha="center", va="center", color=colour, fontsize=8)
    return _png_data_uri(fig)


def pr_curves_png(metrics: Mapping[str, Any]) -> str | None:
    """The detection PR curves (IoU 0.5) of all labels with ground truth, or None if there are none."""
    curves = {
        label: curve
        for label, curve in metrics.get("pr_curves", {}).items()
        if curve.get("recall") and curve.get("precision")
    }
    if not curves:
        return None
    per_label = metrics.get("per_label", {})
    fig = _new_figure(7, 5)
    ax = fig.add_subplot()
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(curves) <= 10 else "tab20"]
    handles, names = [], []
    for i, (label, curve) in enumerate(curves.items()):
        (line,) = ax.plot(
            np.asarray(curve["recall"], dtype=np.float64),
            np.asarray(curve["precision"], dtype=np.float64),
            color=palette(i % palette.N),
            linestyle=("-", "--", ":", "-.")[(i // palette.N) % 4],
        )
        handles.append(line)
        ap50 = per_label.get(label, {}).get("ap50")
        names.append(f"{label} (AP@.50 {format_metric(ap50)})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("interpolated precision")
    ax.set_title("Precision-recall at IoU 0.50")
    ax.grid(True, alpha=0.3)
    if len(handles) <= _MAX_LEGEND_ENTRIES:
        # Explicit labels: matplotlib would otherwise hide labels starting with "_".
        legend = ax.legend(handles, names, loc="lower left", fontsize=8)
        for text in legend.get_texts():
            text.set_parse_math(False)
    return _png_data_uri(fig)


def training_curves_png(figure: str, lines: Mapping[str, Sequence[Sequence[Any]]]) -> str | None:
    """One training-curve figure (``lines``: legend -> [[x, y], ...], x the epoch) as a PNG data URI, or None if empty."""
    drawn = {legend: [(float(x), float(y)) for x, y in points if _is_number(x) and _is_number(y)] for legend, points in lines.items()}
    drawn = {legend: points for legend, points in drawn.items() if points}
    if not drawn:
        return None
    fig = _new_figure(6, 3.5)
    ax = fig.add_subplot()
    handles = []
    for points in drawn.values():
        xs, ys = zip(*points)
        (line,) = ax.plot(xs, ys, marker="o", markersize=3)
        handles.append(line)
    ax.set_xlabel("epoch")
    ax.set_title(figure, fontsize=10)
    ax.grid(True, alpha=0.3)
    if len(handles) <= _MAX_LEGEND_ENTRIES:
        legend = ax.legend(handles, list(drawn), fontsize=8)
        for text in legend.get_texts():
            text.set_parse_math(False)
    ax.title.set_parse_math(False)
    return _png_data_uri(fig)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _html_table(header: list[str], body: list[list[str]], label_columns: int = 1) -> str:
    """A table from already-escaped cells; the first ``label_columns`` are left-aligned."""

    def cells(tag: str, row: list[str]) -> str:
        return "".join(
            f'<{tag} class="label">{c}</{tag}>' if i < label_columns else f"<{tag}>{c}</{tag}>"
            for i, c in enumerate(row)
        )

    rows = "".join(f"<tr>{cells('td', row)}</tr>" for row in body)
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{rows}</tbody></table>"


def _per_label_html(per_label: Mapping[str, Mapping[str, Any]]) -> str:
    columns = _per_label_columns(per_label)
    header = ["label", *(_esc(_display(c)) for c in columns)]
    body = [
        [_esc(label), *(_esc(format_metric(row.get(c))) for c in columns)]
        for label, row in per_label.items()
    ]
    return _html_table(header, body)


def _top_confusions_html(top: list[Mapping[str, Any]], per_label: Mapping[str, Mapping[str, Any]]) -> str:
    header = ["true", "predicted", "count", "share of true label"]
    body = []
    for row in top:
        support = (per_label.get(row["true"]) or {}).get("support")
        share = row["count"] / support if isinstance(support, (int, float)) and support else None
        body.append([_esc(row["true"]), _esc(row["predicted"]), _esc(row["count"]), _esc(format_metric(share))])
    return _html_table(header, body, label_columns=2)


def _confusion_html(confusion: Mapping[str, Any]) -> str:
    labels = confusion.get("labels", [])
    columns = confusion.get("columns", labels)
    header = ["true \\ predicted", *(_esc(c) for c in columns)]
    body = [
        [_esc(label), *(_esc(format_metric(v)) for v in row)]
        for label, row in zip(labels, confusion.get("rows", []))
    ]
    return _html_table(header, body)


def _delta(value: Any, base: Any) -> str:
    value, base = from_json_safe(value), from_json_safe(base)
    numbers = [v for v in (value, base) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(numbers) != 2:
        return ""
    delta = value - base
    if isinstance(value, int) and isinstance(base, int):
        return f"{delta:+d}"
    return f"{delta:+.3f}"


def _is_text(value: Any) -> bool:
    """A string that is not an encoded number (``NaN``, ``Infinity``): a note such as ``method``."""
    return isinstance(value, str) and not isinstance(from_json_safe(value), float)


def _summary_html(metrics: Mapping[str, Any], baselines: Sequence[Baseline]) -> str:
    """The summary table, its text entries (the method) as notes under it; with baselines, their
    values and the delta to each (this value minus theirs)."""
    version = metrics.get("model_version")
    header = ["metric", f"v{_esc(version)} (this)" if baselines and isinstance(version, int) else "value"]
    for baseline in baselines:
        header += [_esc(baseline.name), "&Delta;"]
    others = [dict(_summary_rows(b.metrics)) for b in baselines]
    body, notes = [], []
    for name, value in _summary_rows(metrics):
        if _is_text(value):
            notes.append(f'<p class="note">{_esc(name)}: {_esc(value)}</p>')
            continue
        row = [_esc(name), _esc(format_metric(value))]
        for other in others:
            base = other.get(name)
            row += [_esc(format_metric(base)) if name in other else "", _esc(_delta(value, base))]
        body.append(row)
    return _html_table(header, body) + "".join(notes)


def _mistakes_html(mistakes: Sequence[ShownMistake], detection: bool) -> str:
    figures = []
    for shown in mistakes:
        m = shown.mistake
        if shown.image_uri:
            preview = f'<img alt="{_esc(m.path)}" src="{shown.image_uri}">'
        elif shown.text is not None:
            preview = f"<pre>{_esc(shown.text)}</pre>"
        else:
            preview = "<pre>(no preview)</pre>"
        figures.append(
            f"<figure>{preview}<figcaption>{_esc(m.path)}<br>"
            f'<span class="true">true {_esc(m.truth)}</span><br>'
            f'<span class="predicted">{"" if detection else "predicted "}{_esc(m.predicted)}</span></figcaption></figure>'
        )
    return f'<div class="mistakes">{"".join(figures)}</div>'


def render_html_report(
    metrics: Mapping[str, Any],
    *,
    title: str,
    context: Mapping[str, str] | None = None,
    baselines: Sequence[Baseline] = (),
    mistakes: Sequence[ShownMistake] = (),
    mistakes_total: int | None = None,
    curves: Mapping[str, Mapping[str, Sequence[Sequence[Any]]]] | None = None,
) -> str:
    """A self-contained HTML page (inline CSS, images as data URIs) presenting ``metrics``.

    ``metrics`` is a dict from ``classification_metrics`` or ``detection_metrics``,
    raw or ``json_safe``-encoded. ``context`` (model, version, dataset, filters, ...)
    is shown under the title; the keys ``evaluate_model`` adds to the metrics (ids,
    filters) are context, never rows of the summary. ``baselines`` (the previous version,
    the ``production`` alias) get a column each with the delta to them; ``mistakes`` (worst
    first, of ``mistakes_total``) are shown with their thumbnails. Every label and context
    string is HTML-escaped. Without a dense confusion matrix (many labels) the top
    confusions are shown instead. A part that fails to render (a figure, say) becomes an
    error note in the page; the page itself is always returned. ``curves`` (figure ->
    legend -> [[epoch, value], ...], the training run's) are drawn one figure each.
    """
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
    ]
    if context:
        items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in context.items())
        parts.append(f'<dl class="context">{items}</dl>')

    task = metrics.get("task")
    if task:
        parts.append(f"<p>Task: {_esc(task)}</p>")

    _section(parts, "Summary", lambda: _summary_html(metrics, baselines))

    if mistakes:
        detection = task == "detection"
        what = "images with missed or false boxes" if detection else "wrong labels, most confident first"
        of = f" of {mistakes_total}" if mistakes_total is not None else ""
        parts.append("<h2>Worst mistakes</h2>")
        parts.append(
            f"<p>{len(mistakes)}{_esc(of)} {what}"
            + (" (true boxes green, predicted red)" if detection else "")
            + ".</p>"
        )
        _section(parts, None, lambda: _mistakes_html(mistakes, detection))

    per_label = metrics.get("per_label")
    if per_label:
        _section(parts, "Per label", lambda: _per_label_html(per_label))

    confusion = metrics.get("confusion_matrix")
    top = metrics.get("top_confusions")
    if confusion and confusion.get("labels"):
        parts.append("<h2>Confusion matrix</h2>")
        _figure(parts, "Confusion matrix", lambda: confusion_matrix_png(confusion))
        _section(parts, None, lambda: _confusion_html(confusion))
    elif top is not None and per_label:
        parts.append("<h2>Top confusions</h2>")
        parts.append(
            f"<p>{len(per_label)} labels: the full confusion matrix is not kept; "
            f"these are the {len(top)} most frequent confusions.</p>"
        )
        _section(parts, None, lambda: _top_confusions_html(top, per_label))

    if task == "detection":
        parts.append("<h2>Precision-recall curves</h2>")
        if not _figure(parts, "Precision-recall curves", lambda: pr_curves_png(metrics)):
            parts.append("<p>No label has ground truth: no curve to draw.</p>")

    if curves:
        parts.append("<h2>Training curves</h2>")
        for figure, lines in curves.items():
            _figure(parts, f"Training curve {figure}", lambda figure=figure, lines=lines: training_curves_png(figure, lines))

    parts.append("</body></html>")
    return "\n".join(parts)


def _failure(what: str, exc: Exception) -> str:
    """An error paragraph for a part of the report that could not be rendered (logged too)."""
    log.warning("evaluation report: could not render %s: %s: %s", what, type(exc).__name__, exc)
    return f'<p class="error">Could not render {_esc(what)}: {_esc(type(exc).__name__)}: {_esc(exc)}</p>'


def _section(parts: list[str], heading: str | None, render: Callable[[], str]) -> None:
    """Append ``render()`` under ``heading``; a rendering error becomes a note in its place."""
    if heading:
        parts.append(f"<h2>{_esc(heading)}</h2>")
    try:
        parts.append(render())
    except Exception as exc:  # noqa: BLE001 - the metrics are stored anyway: the report says what is missing
        parts.append(_failure(heading.lower() if heading else "this table", exc))


def _figure(parts: list[str], alt: str, render: Callable[[], str | None]) -> bool:
    """Append the image ``render()`` returns; False when there is none (a failure is noted)."""
    try:
        uri = render()
    except Exception as exc:  # noqa: BLE001 - as in _section
        parts.append(_failure(f"the {alt.lower()} figure", exc))
        return True
    if uri:
        parts.append(f'<p><img alt="{_esc(alt)}" src="{uri}"></p>')
    return bool(uri)


def _md_cell(value: Any) -> str:
    text = " ".join(str(value).split())
    return html.escape(text, quote=False).replace("\\", "\\\\").replace("|", "\\|")


def render_markdown_summary(metrics: Mapping[str, Any], *, max_labels: int = 50) -> str:
    """A short markdown summary (for the KFP UI): summary table, then up to ``max_labels`` label rows."""
    lines = ["| metric | value |", "| --- | --- |"]
    lines += [
        f"| {_md_cell(name)} | {_md_cell(format_metric(value))} |"
        for name, value in _summary_rows(metrics)
    ]
    per_label = metrics.get("per_label") or {}
    if per_label:
        columns = _per_label_columns(per_label)
        lines += [
            "",
            "| label | " + " | ".join(_md_cell(_display(c)) for c in columns) + " |",
            "| --- " * (len(columns) + 1) + "|",
        ]
        for label, row in list(per_label.items())[:max_labels]:
            values = " | ".join(_md_cell(format_metric(row.get(c))) for c in columns)
            lines.append(f"| {_md_cell(label)} | {values} |")
        if len(per_label) > max_labels:
            lines += ["", f"... and {len(per_label) - max_labels} more labels."]
    return "\n".join(lines) + "\n"
