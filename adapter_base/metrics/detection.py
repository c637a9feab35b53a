"""COCO-style object-detection metrics: per-label AP at IoU 0.50:0.05:0.95, mAP, PR curves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from adapter_base.metrics._labels import nan_mean, ordered_labels

Box = tuple[float, float, float, float]
"""(left, top, right, bottom) in any consistent unit."""

IOU_THRESHOLDS: tuple[float, ...] = tuple(float(x) for x in np.arange(50, 100, 5) / 100)
"""0.50, 0.55, ..., 0.95 (exact decimal values, not accumulated float steps)."""

RECALL_POINTS: tuple[float, ...] = tuple(float(x) for x in np.arange(101) / 100)
"""Recall levels 0.00, 0.01, ..., 1.00 at which the precision envelope is sampled."""

_THRESHOLDS = np.asarray(IOU_THRESHOLDS)
_RECALLS = np.asarray(RECALL_POINTS)
_T50 = IOU_THRESHOLDS.index(0.5)
_T75 = IOU_THRESHOLDS.index(0.75)


class GroundTruthBox(NamedTuple):
    """A ground-truth object; a plain ``(label, box)`` tuple is accepted too."""

    label: str
    box: Box


class PredictedBox(NamedTuple):
    """A detection; a plain ``(label, box, score)`` tuple is accepted too."""

    label: str
    box: Box
    score: float


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), shape (n, m).

    Boxes are (left, top, right, bottom); inverted extents count as zero area, and a
    pair whose union has zero area has IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0) * np.maximum(a[:, 3] - a[:, 1], 0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(width, 0) * np.maximum(height, 0)
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def _match(ious: np.ndarray) -> np.ndarray:
    """True-positive flags (thresholds, predictions) for predictions sorted by descending score.

    Each prediction in turn takes the still-unmatched ground truth with the highest
    IoU >= threshold, independently for every threshold.
    """
    n_pred, n_gt = ious.shape
    tp = np.zeros((len(_THRESHOLDS), n_pred), dtype=bool)
    if n_pred == 0 or n_gt == 0:
        return tp
    matched = np.zeros((len(_THRESHOLDS), n_gt), dtype=bool)
    rows = np.arange(len(_THRESHOLDS))
    best_possible = ious.max(axis=1)
    for i in range(n_pred):
        if best_possible[i] < _THRESHOLDS[0]:
            continue
        candidates = np.where(matched, -1.0, ious[i])
        best = candidates.argmax(axis=1)
        hit = candidates[rows, best] >= _THRESHOLDS
        tp[hit, i] = True
        matched[rows[hit], best[hit]] = True
    return tp


def _interpolated_precision(tp: np.ndarray, num_gt: int) -> np.ndarray:
    """101-point interpolated precision per threshold, shape (thresholds, 101).

    ``tp`` (thresholds, predictions) must be ordered by descending score.
    """
    out = np.zeros((tp.shape[0], len(_RECALLS)))
    if tp.shape[1] == 0:
        return out
    tp_cum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_cum = np.cumsum(~tp, axis=1, dtype=np.float64)
    recall = tp_cum / num_gt
    precision = tp_cum / (tp_cum + fp_cum)
    # Envelope: the best precision achievable at this recall or any higher one.
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    for t in range(tp.shape[0]):
        idx = np.searchsorted(recall[t], _RECALLS, side="left")
        reached = idx < recall.shape[1]
        out[t, reached] = envelope[t, idx[reached]]
    return out


def _as_boxes(boxes: list[Any]) -> np.ndarray:
    try:
        arr = np.asarray(boxes, dtype=np.float64).reshape(len(boxes), 4)
    except (TypeError, ValueError):
        arr = None
    if arr is None or not np.isfinite(arr).all():
        raise ValueError(f"boxes must be 4 finite numbers (left, top, right, bottom), got {boxes!r}")
    return arr


def _group(labels: list[str]) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    return {label: np.asarray(idx) for label, idx in groups.items()}


def detection_metrics(
    images: Iterable[tuple[Sequence[GroundTruthBox], Sequence[PredictedBox]]],
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """COCO-style average precision for boxes, per label and averaged over labels.

    ``images`` yields one ``(ground_truths, predictions)`` pair per image; boxes of
    different labels never match. For every label and IoU threshold in 0.50:0.05:0.95,
    predictions are matched greedily per image in descending score order, each to
    the unmatched ground truth with the highest IoU >= threshold; AP is the mean over
    recall 0, 0.01, ..., 1 of the precision envelope (COCO 101-point interpolation;
    no per-image detection cap, no crowd/area handling). Thresholds and recall levels
    are the exact decimals, so results can differ from pycocotools' ``np.linspace``
    grid only where a recall lands exactly on a level such as 0.35.

    Labels are ``labels`` in the given order followed by every other label seen,
    sorted. A label without ground truth has NaN AP and is left out of the mAP
    means; a mAP with no label to average is NaN. Such a label's PR curve has empty
    lists.

    Returns a JSON-ready dict (apart from NaN floats; see ``json_safe``)::

        {"task": "detection", "num_images": int, "iou_thresholds": [0.5, ..., 0.95],
         "per_label": {label: {"ap", "ap50", "ap75": float, "num_gt", "num_pred": int}},
         "map": float, "map50": float, "map75": float,
         "pr_curves": {label: {"recall": [101 floats], "precision": [101 floats]}}}

    ``ap``/``map`` are averaged over the ten thresholds; PR curves are the
    interpolated curves at IoU 0.5.
    """
    num_gt: dict[str, int] = defaultdict(int)
    scores: dict[str, list[np.ndarray]] = defaultdict(list)
    flags: dict[str, list[np.ndarray]] = defaultdict(list)
    num_images = 0

    for ground_truths, predictions in images:
        num_images += 1
        gt_labels = [label for label, _ in ground_truths]
        gt_boxes = _as_boxes([box for _, box in ground_truths])
        pred_labels = [label for label, _, _ in predictions]
        pred_boxes = _as_boxes([box for _, box, _ in predictions])
        pred_scores = np.asarray([score for _, _, score in predictions], dtype=np.float64)
        if not np.isfinite(pred_scores).all():
            raise ValueError(f"prediction scores must be finite, got {pred_scores.tolist()!r}")

        # One IoU matrix across labels per image; each label then takes its sub-block.
        ious = iou_matrix(pred_boxes, gt_boxes)
        gt_groups = _group(gt_labels)
        for label, idx in gt_groups.items():
            num_gt[label] += len(idx)
        for label, idx in _group(pred_labels).items():
            idx = idx[np.argsort(-pred_scores[idx], kind="stable")]
            gt_idx = gt_groups.get(label, np.empty(0, dtype=np.int64))
            scores[label].append(pred_scores[idx])
            flags[label].append(_match(ious[idx][:, gt_idx]))

    names = ordered_labels(labels, [*num_gt, *scores])
    per_label: dict[str, dict[str, Any]] = {}
    pr_curves: dict[str, dict[str, list[float]]] = {}
    for label in names:
        n_gt = num_gt.get(label, 0)
        if label in scores:
            all_scores = np.concatenate(scores[label])
            order = np.argsort(-all_scores, kind="stable")
            tp = np.concatenate(flags[label], axis=1)[:, order]
        else:
            tp = np.zeros((len(_THRESHOLDS), 0), dtype=bool)

        if n_gt == 0:
            ap = np.full(len(_THRESHOLDS), np.nan)
            pr_curves[label] = {"recall": [], "precision": []}
        else:
            curves = _interpolated_precision(tp, n_gt)
            ap = curves.mean(axis=1)
            pr_curves[label] = {"recall": list(RECALL_POINTS), "precision": curves[_T50].tolist()}

        per_label[label] = {
            "ap": float(ap.mean()),
            "ap50": float(ap[_T50]),
            "ap75": float(ap[_T75]),
            "num_gt": int(n_gt),
            "num_pred": int(tp.shape[1]),
        }

    return {
        "task": "detection",
        "num_images": num_images,
        "iou_thresholds": list(IOU_THRESHOLDS),
        "per_label": per_label,
        "map": nan_mean(row["ap"] for row in per_label.values()),
        "map50": nan_mean(row["ap50"] for row in per_label.values()),
        "map75": nan_mean(row["ap75"] for row in per_label.values()),
        "pr_curves": pr_curves,
    }
