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
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
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


def _as_box(box: Any) -> np.ndarray:
    arr = np.asarray(box, dtype=np.float64)
    if arr.shape != (4,) or not np.isfinite(arr).all():
        raise ValueError(f"box must be 4 finite numbers (left, top, right, bottom), got {box!r}")
    return arr


def detection_metrics(
    images: Iterable[tuple[Sequence[GroundTruthBox], Sequence[PredictedBox]]],
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """COCO-style average precision for boxes, per label and averaged over labels.

    ``images`` yields one ``(ground_truths, predictions)`` pair per image; boxes of
    different labels never match. For every label and IoU threshold in 0.50:0.05:0.95,
    predictions are matched greedily per image in descending score order; AP is the
    mean over recall 0, 0.01, ..., 1 of the precision envelope (COCO 101-point
    interpolation; no per-image detection cap, no crowd/area handling).

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
        gt_boxes: dict[str, list[np.ndarray]] = defaultdict(list)
        pred_boxes: dict[str, list[np.ndarray]] = defaultdict(list)
        pred_scores: dict[str, list[float]] = defaultdict(list)
        for label, box in ground_truths:
            gt_boxes[label].append(_as_box(box))
        for label, box, score in predictions:
            score = float(score)
            if not np.isfinite(score):
                raise ValueError(f"prediction score must be finite, got {score!r}")
            pred_boxes[label].append(_as_box(box))
            pred_scores[label].append(score)

        for label, boxes in gt_boxes.items():
            num_gt[label] += len(boxes)
        for label, boxes in pred_boxes.items():
            s = np.asarray(pred_scores[label])
            order = np.argsort(-s, kind="stable")
            gts = gt_boxes.get(label)
            if gts:
                ious = iou_matrix(np.stack(boxes)[order], np.stack(gts))
            else:
                ious = np.zeros((len(boxes), 0))
            scores[label].append(s[order])
            flags[label].append(_match(ious))

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
