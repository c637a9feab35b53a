"""Object-detection metrics equal to pycocotools ``COCOeval`` (bbox): per-label AP, mAP, PR curves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from adapter_base.metrics._labels import nan_mean, ordered_labels

Box = tuple[float, float, float, float]
"""(left, top, right, bottom) in pixels; COCO's [x, y, w, h] is (left, top, right - left, bottom - top)."""

ImageSize = tuple[float, float]
"""(width, height) of an image in pixels."""

IOU_THRESHOLDS: tuple[float, ...] = tuple(float(x) for x in np.linspace(0.5, 0.95, 10))
"""COCOeval's IoU grid ``np.linspace(.5, .95, 10)``: 0.5, 0.55, ... as those float values
(e.g. 0.8999999999999999), so the same detections match as in COCOeval."""

RECALL_POINTS: tuple[float, ...] = tuple(float(x) for x in np.linspace(0.0, 1.0, 101))
"""COCOeval's recall grid ``np.linspace(0, 1, 101)`` at which the precision envelope is sampled."""

MAX_DETECTIONS = 100
"""Detections scored per image and label, highest scores first (COCOeval's largest ``maxDets``)."""

METHOD = (
    "pycocotools COCOeval bbox (area range 'all', maxDets 100 per image and label); unlike COCO there are "
    "no small/medium/large area ranges, crowd regions or average recall, and predicted boxes are first clipped "
    "to the image (negative coordinates to 0)"
)
"""One sentence on how the detection metrics relate to COCOeval (stored with them and shown in reports)."""

_THRESHOLDS = np.asarray(IOU_THRESHOLDS)
_MATCH_THRESHOLDS = np.minimum(_THRESHOLDS, 1 - 1e-10)  # COCOeval's cap, so IoU 1 always matches
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

    Boxes are (left, top, right, bottom). The arithmetic is COCO's (``maskUtils.iou``
    on [x, y, w, h]: right = x + w, area = w * h), so IoUs equal COCOeval's bit for bit.
    Boxes that do not overlap, including zero-area and inverted ones, have IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    a_w, a_h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    b_w, b_h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    width = np.minimum((a[:, 0] + a_w)[:, None], (b[:, 0] + b_w)[None, :]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum((a[:, 1] + a_h)[:, None], (b[:, 1] + b_h)[None, :]) - np.maximum(a[:, None, 1], b[None, :, 1])
    overlap = (width > 0) & (height > 0)
    inter = np.where(overlap, width * height, 0.0)
    union = (a_w * a_h)[:, None] + (b_w * b_h)[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=overlap)
    return out


def clip_boxes(boxes: np.ndarray, image_size: ImageSize | None) -> tuple[np.ndarray, int]:
    """Boxes (n, 4) clipped to the image, and how many of them changed.

    With ``image_size`` (width, height) coordinates are clipped to [0, width] x [0, height];
    without it only negative coordinates are raised to 0.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if image_size is None:
        high = np.full(4, np.inf)
    else:
        width, height = (float(v) for v in image_size)
        if not (np.isfinite(width) and np.isfinite(height) and width > 0 and height > 0):
            raise ValueError(f"image size must be a positive finite (width, height), got {image_size!r}")
        high = np.array([width, height, width, height])
    clipped = np.clip(boxes, 0.0, high)
    return clipped, int((clipped != boxes).any(axis=1).sum())


def _match(ious: np.ndarray) -> np.ndarray:
    """True-positive flags (thresholds, predictions) for predictions sorted by descending score.

    COCOeval's greedy matching: each prediction in turn takes, at every threshold
    independently, the unmatched ground truth with the highest IoU >= threshold; among
    equal IoUs the last ground truth in input order wins.
    """
    n_pred, n_gt = ious.shape
    n_thr = len(_THRESHOLDS)
    tp = np.zeros((n_thr, n_pred), dtype=bool)
    if n_pred == 0 or n_gt == 0:
        return tp
    matched = np.zeros((n_thr, n_gt), dtype=bool)
    rows = np.arange(n_thr)
    best_possible = ious.max(axis=1)
    for i in range(n_pred):
        if best_possible[i] < _MATCH_THRESHOLDS[0]:
            continue
        candidates = np.where(matched, -1.0, ious[i])
        best = n_gt - 1 - candidates[:, ::-1].argmax(axis=1)
        hit = candidates[rows, best] >= _MATCH_THRESHOLDS
        tp[hit, i] = True
        matched[rows[hit], best[hit]] = True
    return tp


def _interpolated_precision(tp: np.ndarray, num_gt: int) -> np.ndarray:
    """COCOeval's 101-point interpolated precision per threshold, shape (thresholds, 101).

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


def _unpack(image: Sequence[Any]) -> tuple[Sequence[Any], Sequence[Any], ImageSize | None]:
    if len(image) == 2:
        return image[0], image[1], None
    if len(image) == 3:
        return image[0], image[1], image[2]
    raise ValueError(f"an image must be (ground_truths, predictions) or (ground_truths, predictions, (width, height)), got {len(image)} fields")


def detection_metrics(
    images: Iterable[Sequence[Any]],
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Box average precision per label and averaged over labels, equal to pycocotools ``COCOeval``.

    ``images`` yields one ``(ground_truths, predictions)`` or ``(ground_truths, predictions,
    (width, height))`` per image. Predicted boxes are first clipped to the image (to
    non-negative coordinates when the size is not given). Then, as COCOeval with
    iouType 'bbox', area range 'all' and maxDets 100 computes them: the 100 highest-scored
    predictions per image and label (stable order on ties) are matched greedily to
    ground truth of their label at each IoU threshold of ``IOU_THRESHOLDS``; AP is the
    mean over ``RECALL_POINTS`` of the precision envelope. Images without ground truth
    count (their predictions are false positives). There are no area ranges or crowd
    regions (see ``METHOD``).

    Labels are ``labels`` in the given order followed by every other label seen,
    sorted. A label without ground truth has NaN AP (COCO's -1) and is left out of the
    mAP means; a mAP with no label to average is NaN. Such a label's PR curve has empty
    lists.

    Returns a JSON-ready dict (apart from NaN floats; see ``json_safe``)::

        {"task": "detection", "method": METHOD, "num_images": int,
         "max_detections": 100, "num_pred_clipped": int,
         "iou_thresholds": [0.5, ..., 0.95],
         "per_label": {label: {"ap", "ap50", "ap75": float, "num_gt", "num_pred": int}},
         "map": float, "map50": float, "map75": float,
         "pr_curves": {label: {"recall": [101 floats], "precision": [101 floats]}}}

    ``ap``/``map`` are averaged over the ten thresholds; ``num_pred`` counts every
    prediction given (including those past the 100 per image); PR curves are the
    interpolated curves at IoU 0.5.
    """
    num_gt: dict[str, int] = defaultdict(int)
    num_pred: dict[str, int] = defaultdict(int)
    scores: dict[str, list[np.ndarray]] = defaultdict(list)
    flags: dict[str, list[np.ndarray]] = defaultdict(list)
    num_images = 0
    num_clipped = 0

    for image in images:
        ground_truths, predictions, image_size = _unpack(image)
        num_images += 1
        gt_labels = [label for label, _ in ground_truths]
        gt_boxes = _as_boxes([box for _, box in ground_truths])
        pred_labels = [label for label, _, _ in predictions]
        pred_boxes, clipped = clip_boxes(_as_boxes([box for _, box, _ in predictions]), image_size)
        num_clipped += clipped
        pred_scores = np.asarray([score for _, _, score in predictions], dtype=np.float64)
        if not np.isfinite(pred_scores).all():
            raise ValueError(f"prediction scores must be finite, got {pred_scores.tolist()!r}")

        # One IoU matrix across labels per image; each label then takes its sub-block.
        ious = iou_matrix(pred_boxes, gt_boxes)
        gt_groups = _group(gt_labels)
        for label, idx in gt_groups.items():
            num_gt[label] += len(idx)
        for label, idx in _group(pred_labels).items():
            num_pred[label] += len(idx)
            idx = idx[np.argsort(-pred_scores[idx], kind="stable")][:MAX_DETECTIONS]
            gt_idx = gt_groups.get(label, np.empty(0, dtype=np.int64))
            scores[label].append(pred_scores[idx])
            flags[label].append(_match(ious[idx][:, gt_idx]))

    names = ordered_labels(labels, [*num_gt, *scores])
    per_label: dict[str, dict[str, Any]] = {}
    pr_curves: dict[str, dict[str, list[float]]] = {}
    for label in names:
        n_gt = num_gt.get(label, 0)
        if label in scores:
            # COCOeval ranks all images' detections by score, images in order on ties.
            order = np.argsort(-np.concatenate(scores[label]), kind="stable")
            tp = np.concatenate(flags[label], axis=1)[:, order]
        else:
            tp = np.zeros((len(_THRESHOLDS), 0), dtype=bool)

        if n_gt == 0:
            ap, ap50, ap75 = np.nan, np.nan, np.nan
            pr_curves[label] = {"recall": [], "precision": []}
        else:
            curves = _interpolated_precision(tp, n_gt)
            ap, ap50, ap75 = curves.mean(), curves[_T50].mean(), curves[_T75].mean()
            pr_curves[label] = {"recall": list(RECALL_POINTS), "precision": curves[_T50].tolist()}

        per_label[label] = {
            "ap": float(ap),
            "ap50": float(ap50),
            "ap75": float(ap75),
            "num_gt": int(n_gt),
            "num_pred": int(num_pred.get(label, 0)),
        }

    return {
        "task": "detection",
        "method": METHOD,
        "num_images": num_images,
        "max_detections": MAX_DETECTIONS,
        "num_pred_clipped": num_clipped,
        "iou_thresholds": list(IOU_THRESHOLDS),
        "per_label": per_label,
        "map": nan_mean(row["ap"] for row in per_label.values()),
        "map50": nan_mean(row["ap50"] for row in per_label.values()),
        "map75": nan_mean(row["ap75"] for row in per_label.values()),
        "pr_curves": pr_curves,
    }
