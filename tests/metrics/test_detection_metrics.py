"""detection_metrics against hand-computed COCO-style AP and a naive reference implementation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from adapter_base.metrics import (
    IOU_THRESHOLDS,
    RECALL_POINTS,
    GroundTruthBox,
    PredictedBox,
    detection_metrics,
    iou_matrix,
)

SQUARE = (0.0, 0.0, 10.0, 10.0)
FAR = (100.0, 100.0, 110.0, 110.0)


def test_iou_matrix_hand_computed() -> None:
    a = np.array([[0, 0, 2, 2], [0, 0, 10, 10]])
    b = np.array([[1, 1, 3, 3], [0, 0, 10, 6], [20, 20, 30, 30]])
    # (0,0,2,2)   vs (1,1,3,3):   intersection 1,  union 4 + 4 - 1 = 7        -> 1/7
    # (0,0,2,2)   vs (0,0,10,6):  intersection 4,  union 4 + 60 - 4 = 60      -> 1/15
    # (0,0,10,10) vs (1,1,3,3):   intersection 4,  union 100 + 4 - 4 = 100    -> 0.04
    # (0,0,10,10) vs (0,0,10,6):  intersection 60, union 100 + 60 - 60 = 100  -> 0.6
    # anything    vs (20,20,30,30): disjoint                                  -> 0
    expected = [[1 / 7, 1 / 15, 0.0], [0.04, 0.6, 0.0]]
    np.testing.assert_allclose(iou_matrix(a, b), expected)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_degenerate_boxes_do_not_divide_by_zero() -> None:
    point = (5.0, 5.0, 5.0, 5.0)
    line = (0.0, 5.0, 10.0, 5.0)
    inverted = (10.0, 10.0, 0.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ious = iou_matrix(np.array([point, line, inverted]), np.array([point, line, SQUARE]))
        m = detection_metrics([([("x", point), ("x", line)], [("x", point, 0.9), ("x", inverted, 0.5)])])
    assert np.isfinite(ious).all() and (ious == 0).all()
    assert m["per_label"]["x"]["ap"] == 0.0


def test_perfect_predictions_give_ap_one() -> None:
    images = [
        ([("cat", SQUARE), ("dog", FAR)], [("cat", SQUARE, 0.9), ("dog", FAR, 0.8)]),
        ([("cat", FAR)], [("cat", FAR, 0.3)]),
    ]
    m = detection_metrics(images)
    assert m["task"] == "detection"
    assert m["num_images"] == 2
    # COCOeval's grid, float for float: np.linspace gives 0.8999999999999999, not 0.9.
    assert m["iou_thresholds"] == np.linspace(0.5, 0.95, 10).tolist()
    assert m["iou_thresholds"] == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95], abs=1e-15)
    assert m["max_detections"] == 100 and m["num_pred_clipped"] == 0
    assert m["per_label"] == {
        "cat": {"ap": 1.0, "ap50": 1.0, "ap75": 1.0, "num_gt": 2, "num_pred": 2},
        "dog": {"ap": 1.0, "ap50": 1.0, "ap75": 1.0, "num_gt": 1, "num_pred": 1},
    }
    assert (m["map"], m["map50"], m["map75"]) == (1.0, 1.0, 1.0)
    assert m["pr_curves"]["cat"] == {"recall": list(RECALL_POINTS), "precision": [1.0] * 101}


def test_false_positive_below_true_positive_costs_nothing() -> None:
    # Ranked: TP (recall 1, precision 1), FP (recall 1, precision 1/2).
    # Envelope at every recall level 0..1 is 1, so AP = 101 * 1 / 101 = 1.
    m = detection_metrics([([("x", SQUARE)], [("x", SQUARE, 0.9), ("x", FAR, 0.2)])])
    assert m["per_label"]["x"]["ap50"] == 1.0
    assert m["per_label"]["x"]["num_pred"] == 2


def test_false_positive_above_true_positive_halves_ap() -> None:
    # Ranked: FP (recall 0, precision 0), TP (recall 1, precision 1/2).
    # Envelope: max precision at recall >= r is 1/2 for every r in 0..1 -> AP = 0.5.
    m = detection_metrics([([("x", SQUARE)], [("x", FAR, 0.9), ("x", SQUARE, 0.2)])])
    assert m["per_label"]["x"]["ap50"] == pytest.approx(0.5)
    assert m["pr_curves"]["x"]["precision"] == pytest.approx([0.5] * 101)


def test_101_point_interpolation_hand_computed() -> None:
    # 3 ground truths; ranked TP, FP, TP:
    #   recall    1/3, 1/3, 2/3
    #   precision 1,   1/2, 2/3   -> envelope 1, 2/3, 2/3
    # recall levels 0.00..0.33 (34 points) -> 1; 0.34..0.66 (33 points) -> 2/3;
    # 0.67..1.00 (34 points) never reached -> 0.
    # AP = (34 * 1 + 33 * 2/3 + 34 * 0) / 101 = 56 / 101
    gts = [("x", (0, 0, 10, 10)), ("x", (20, 0, 30, 10)), ("x", (40, 0, 50, 10))]
    preds = [("x", (0, 0, 10, 10), 0.9), ("x", FAR, 0.8), ("x", (20, 0, 30, 10), 0.7)]
    m = detection_metrics([(gts, preds)])
    assert m["per_label"]["x"]["ap50"] == pytest.approx(56 / 101)
    assert m["per_label"]["x"]["ap"] == pytest.approx(56 / 101)
    assert m["pr_curves"]["x"]["precision"] == pytest.approx([1.0] * 34 + [2 / 3] * 33 + [0.0] * 34)


def test_duplicate_detection_is_a_false_positive() -> None:
    # Both predictions overlap the first ground truth (IoU 1 and 90/110 = 0.82); the
    # second one finds it taken. 2 ground truths, ranked TP, FP:
    #   recall 1/2, 1/2; precision 1, 1/2 -> envelope 1, 1/2
    # recall 0.00..0.50 (51 points) -> 1; 0.51..1.00 -> 0. AP = 51 / 101.
    gts = [("x", (0, 0, 10, 10)), ("x", (20, 0, 30, 10))]
    preds = [("x", (0, 0, 10, 10), 0.9), ("x", (1, 0, 11, 10), 0.8)]
    m = detection_metrics([(gts, preds)])
    assert m["per_label"]["x"]["ap50"] == pytest.approx(51 / 101)


def test_greedy_matching_takes_highest_iou_unmatched_ground_truth() -> None:
    # The first prediction overlaps A with IoU 60/140 and B with IoU 90/110: it takes B,
    # leaving A for the second prediction -> two TPs, AP@.5 = 1.
    gts = [("x", (0, 0, 10, 10)), ("x", (5, 0, 15, 10))]
    preds = [("x", (4, 0, 14, 10), 0.9), ("x", (0, 0, 10, 10), 0.8)]
    assert detection_metrics([(gts, preds)])["per_label"]["x"]["ap50"] == 1.0


def test_scores_are_ranked_across_images() -> None:
    # Image 1: TP at score 0.6; image 2: FP at score 0.9. 2 ground truths, ranked FP, TP:
    #   recall 0, 1/2; precision 0, 1/2 -> envelope 1/2, 1/2
    # recall 0.00..0.50 (51 points) -> 1/2; beyond -> 0. AP = 25.5 / 101.
    images = [
        ([("x", SQUARE)], [("x", SQUARE, 0.6)]),
        ([("x", SQUARE)], [("x", FAR, 0.9)]),
    ]
    assert detection_metrics(images)["per_label"]["x"]["ap50"] == pytest.approx(25.5 / 101)


@pytest.mark.parametrize(
    ("bottom", "thresholds_hit"),
    [
        (5.8, 2),  # IoU 0.58: counts at 0.50 and 0.55 only
        (6.0, 3),  # IoU exactly 0.60: the threshold is inclusive, so 0.60 counts too
        (6.4, 3),  # IoU 0.64: 0.50, 0.55, 0.60
    ],
)
def test_ap_across_iou_thresholds(bottom: float, thresholds_hit: int) -> None:
    # Ground truth (0,0,10,10), prediction (0,0,10,bottom): IoU = 10*bottom / 100.
    # A higher-scored FP elsewhere makes AP@.5 = 0.5 (see the halving test above); at
    # thresholds above the IoU both predictions are FPs (AP 0), so
    # AP@[.5:.95] = thresholds_hit / 10 * AP@.5.
    images = [([("x", SQUARE)], [("x", FAR, 0.9), ("x", (0, 0, 10, bottom), 0.5)])]
    row = detection_metrics(images)["per_label"]["x"]
    assert row["ap50"] == pytest.approx(0.5)
    assert row["ap75"] == 0.0
    assert row["ap"] == pytest.approx(thresholds_hit / 10 * 0.5)


def test_label_without_ground_truth_is_nan_and_excluded_from_map() -> None:
    images = [([("cat", SQUARE)], [("cat", SQUARE, 0.9), ("ghost", FAR, 0.8)])]
    m = detection_metrics(images, labels=["unseen", "cat"])
    assert list(m["per_label"]) == ["unseen", "cat", "ghost"]
    for label in ("unseen", "ghost"):
        row = m["per_label"][label]
        assert all(math.isnan(row[k]) for k in ("ap", "ap50", "ap75"))
        assert m["pr_curves"][label] == {"recall": [], "precision": []}
    assert m["per_label"]["ghost"]["num_pred"] == 1
    assert (m["map"], m["map50"], m["map75"]) == (1.0, 1.0, 1.0)


def test_label_without_predictions_has_ap_zero() -> None:
    m = detection_metrics([([("cat", SQUARE), ("dog", FAR)], [("cat", SQUARE, 0.9)])])
    assert m["per_label"]["dog"]["ap"] == 0.0
    assert m["map"] == pytest.approx(0.5)  # (1 + 0) / 2


def test_all_labels_without_ground_truth_give_nan_map() -> None:
    m = detection_metrics([([], [("ghost", FAR, 0.8)])])
    assert all(math.isnan(m[k]) for k in ("map", "map50", "map75"))


@pytest.mark.parametrize("images", [[], [([], [])], [([], []), ([], [])]])
def test_empty_input(images: list) -> None:
    m = detection_metrics(images)
    assert m["per_label"] == {} and m["pr_curves"] == {}
    assert all(math.isnan(m[k]) for k in ("map", "map50", "map75"))
    assert m["num_images"] == len(images)


def test_named_tuples_and_plain_tuples_agree() -> None:
    plain = [([("x", SQUARE)], [("x", FAR, 0.9), ("x", (0, 0, 10, 7), 0.5)])]
    named = [
        (
            [GroundTruthBox("x", SQUARE)],
            [PredictedBox("x", FAR, 0.9), PredictedBox("x", (0, 0, 10, 7), 0.5)],
        )
    ]
    assert detection_metrics(iter(named)) == detection_metrics(plain)


def test_invalid_input() -> None:
    with pytest.raises(ValueError, match="score"):
        detection_metrics([([], [("x", SQUARE, float("nan"))])])
    with pytest.raises(ValueError, match="box"):
        detection_metrics([([("x", (0, 0, 1))], [])])


def _reference_ap(images: list, label: str, threshold: float) -> float:
    """COCO AP written out with plain loops, for cross-checking."""

    def iou(a: tuple, b: tuple) -> float:
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
        return w * h / union if union > 0 else 0.0

    ranked, num_gt = [], 0
    for gts, preds in images:
        gt = [box for lab, box in gts if lab == label]
        num_gt += len(gt)
        taken = [False] * len(gt)
        for _, raw, score in sorted((p for p in preds if p[0] == label), key=lambda p: -p[2]):
            box = tuple(max(0.0, v) for v in raw)  # predictions are clipped to the image's origin
            best, best_iou = None, threshold
            for j, g in enumerate(gt):
                if not taken[j] and iou(box, g) >= best_iou:
                    best, best_iou = j, iou(box, g)
            if best is not None:
                taken[best] = True
            ranked.append((score, best is not None))
    if num_gt == 0:
        return math.nan
    ranked.sort(key=lambda item: -item[0])
    points, tp = [], 0
    for k, (_, hit) in enumerate(ranked, start=1):
        tp += hit
        points.append((tp / num_gt, tp / k))
    total = 0.0
    for level in RECALL_POINTS:
        total += max((p for rec, p in points if rec >= level), default=0.0)
    return total / 101


def test_matches_naive_reference_on_random_data() -> None:
    rng = np.random.default_rng(7)

    def box() -> tuple:
        x, y = rng.uniform(0, 40, 2)
        w, h = rng.uniform(4, 20, 2)
        return (float(x), float(y), float(x + w), float(y + h))

    images = []
    for _ in range(40):
        gts = [(str(rng.choice(["a", "b", "c"])), box()) for _ in range(int(rng.integers(0, 6)))]
        preds = []
        for label, (l, t, r, b) in gts:
            if rng.random() < 0.8:  # a jittered, mostly-overlapping detection
                j = rng.normal(0, 1.5, 4)
                preds.append((label, (l + j[0], t + j[1], r + j[2], b + j[3]), float(rng.random())))
        preds += [(str(rng.choice(["a", "b", "c"])), box(), float(rng.random())) for _ in range(int(rng.integers(0, 4)))]
        images.append((gts, preds))

    m = detection_metrics(images)
    for label in ("a", "b", "c"):
        expected = [_reference_ap(images, label, t) for t in IOU_THRESHOLDS]
        row = m["per_label"][label]
        assert row["ap50"] == pytest.approx(expected[0], abs=1e-12)
        assert row["ap75"] == pytest.approx(expected[5], abs=1e-12)
        assert row["ap"] == pytest.approx(sum(expected) / 10, abs=1e-12)
