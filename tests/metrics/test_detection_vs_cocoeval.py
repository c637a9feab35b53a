"""detection_metrics against the real pycocotools COCOeval (iouType 'bbox', area 'all', maxDets 100).

Our boxes are (left, top, right, bottom); COCO gets [left, top, right - left, bottom - top]
with area w * h. Per-label AP is COCO's ``eval["precision"][:, :, k, area all, maxDets 100]``
averaged (all thresholds, threshold 0.5, threshold 0.75); the means are ``stats[0:3]``;
a label COCO marks -1 (no ground truth) is NaN for us.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO  # the dev extra; a missing package fails here, it is never skipped
from pycocotools.cocoeval import COCOeval

from adapter_base.metrics import detection_metrics, iou_matrix

TOLERANCE = 1e-12
LABELS = ("a", "b", "c", "d")
GHOST = "ghost"  # predicted, never in the ground truth

Image = tuple[list[tuple[str, tuple[float, ...]]], list[tuple[str, tuple[float, ...], float]]]

def _quiet(fn: Any, *args: Any) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def coco_scores(images: Sequence[Image], labels: Sequence[str]) -> tuple[dict[str, tuple[float, float, float]], tuple[float, float, float]]:
    """Per-label (AP, AP50, AP75) and (mAP, mAP50, mAP75) from pycocotools COCOeval; NaN for COCO's -1."""
    cat_id = {name: k + 1 for k, name in enumerate(labels)}
    categories = [{"id": k, "name": name} for name, k in cat_id.items()]
    image_records = [{"id": i, "width": 1000, "height": 1000} for i in range(1, len(images) + 1)]
    gt_anns: list[dict[str, Any]] = []
    dt_anns: list[dict[str, Any]] = []
    for image_id, (gts, preds) in enumerate(images, start=1):
        for label, (left, top, right, bottom) in gts:
            w, h = right - left, bottom - top
            # ids from 1: COCOeval reads a match to id 0 as "unmatched"
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": image_id, "category_id": cat_id[label],
                            "bbox": [left, top, w, h], "area": w * h, "iscrowd": 0})
        for label, (left, top, right, bottom), score in preds:
            dt_anns.append({"image_id": image_id, "category_id": cat_id[label],
                            "bbox": [left, top, right - left, bottom - top], "score": score})

    def dataset(anns: list[dict[str, Any]]) -> Any:
        c = COCO()
        c.dataset = {"images": image_records, "categories": categories, "annotations": anns}
        _quiet(c.createIndex)
        return c

    gt = dataset(gt_anns)
    dt = _quiet(gt.loadRes, dt_anns) if dt_anns else dataset([])  # loadRes cannot take an empty list
    ev = COCOeval(gt, dt, "bbox")
    _quiet(ev.evaluate)
    _quiet(ev.accumulate)
    _quiet(ev.summarize)
    area_all = ev.params.areaRngLbl.index("all")
    max100 = ev.params.maxDets.index(100)
    t50 = int(np.where(ev.params.iouThrs == 0.5)[0][0])
    t75 = int(np.where(ev.params.iouThrs == 0.75)[0][0])
    precision = ev.eval["precision"][:, :, :, area_all, max100]
    per_label = {}
    for name, k in cat_id.items():
        p = precision[:, :, k - 1]
        per_label[name] = (math.nan,) * 3 if (p == -1).all() else (p.mean(), p[t50].mean(), p[t75].mean())
    means = tuple(math.nan if s == -1 else float(s) for s in ev.stats[:3])
    return per_label, means  # type: ignore[return-value]


def assert_equal_to_coco(images: Sequence[Image]) -> float:
    """Compare every AP and mAP with COCOeval; return the largest absolute difference."""
    seen = sorted({label for gts, preds in images for label, *_ in [*gts, *preds]})
    labels = seen or ["a"]
    ours = detection_metrics(images, labels)
    per_label, means = coco_scores(images, labels)
    pairs = [((ours["per_label"].get(name) or {}).get(key, math.nan), theirs[i], f"{name} {key}")
             for name, theirs in per_label.items() for i, key in enumerate(("ap", "ap50", "ap75"))]
    pairs += [(ours[key], means[i], key) for i, key in enumerate(("map", "map50", "map75"))]
    largest = 0.0
    for mine, theirs, what in pairs:
        if math.isnan(theirs) or math.isnan(mine):
            assert math.isnan(mine) and math.isnan(theirs), f"{what}: ours {mine!r}, COCOeval {theirs!r}"
            continue
        largest = max(largest, abs(mine - theirs))
        assert abs(mine - theirs) <= TOLERANCE, f"{what}: ours {mine!r}, COCOeval {theirs!r}"
    return largest


# --------------------------------------------------------------------------- generated cases


def _box(rng: np.random.Generator, integer: bool) -> tuple[float, float, float, float]:
    x, y = rng.uniform(0, 100, 2)
    w, h = rng.uniform(1, 40, 2)
    box = np.array([x, y, x + w, y + h])
    return tuple(float(v) for v in (np.round(box) if integer else box))  # type: ignore[return-value]


def _jitter(rng: np.random.Generator, box: Sequence[float], scale: float, integer: bool) -> tuple[float, float, float, float]:
    moved = np.asarray(box) + rng.normal(0, scale, 4)
    if integer:
        moved = np.round(moved)
    left, top = max(moved[0], 0.0), max(moved[1], 0.0)  # in the image: nothing for us to clip
    return (float(left), float(top), float(max(moved[2], left)), float(max(moved[3], top)))


def random_case(seed: int) -> tuple[list[Image], Counter[str]]:
    """One random evaluation and the features it exercises."""
    rng = np.random.default_rng(seed)
    labels = LABELS[: int(rng.integers(1, len(LABELS) + 1))]
    integer = bool(rng.random() < 0.5)  # integer pixels: exact IoU ties, IoU on a threshold
    tied = bool(rng.random() < 0.4)  # scores from a few levels: ties in confidence

    def score() -> float:
        return float(rng.integers(0, 4) / 4 + 0.125) if tied else float(rng.random())

    features: Counter[str] = Counter()
    images: list[Image] = []
    for _ in range(int(rng.integers(1, 7))):
        n_gt = 0 if rng.random() < 0.25 else int(rng.integers(1, 9))
        gts = [(str(rng.choice(labels)), _box(rng, integer)) for _ in range(n_gt)]
        preds: list[tuple[str, tuple[float, ...], float]] = []
        for label, box in gts:
            for _ in range(int(rng.choice([0, 1, 1, 1, 2, 3]))):  # missed, found, duplicated
                preds.append((label, _jitter(rng, box, float(rng.choice([0.5, 2.0, 5.0])), integer), score()))
        if rng.random() < 0.25:  # a crowd of overlapping detections around one spot
            centre = _box(rng, integer)
            label = str(rng.choice(labels))
            preds += [(label, _jitter(rng, centre, 3.0, integer), score()) for _ in range(int(rng.integers(5, 16)))]
            features["crowded"] += 1
        preds += [(str(rng.choice(labels)), _box(rng, integer), score()) for _ in range(int(rng.integers(0, 4)))]
        if rng.random() < 0.15:
            preds += [(GHOST, _box(rng, integer), score()) for _ in range(int(rng.integers(1, 4)))]
        if rng.random() < 0.04:  # one image with more detections of a label than maxDets
            label = str(rng.choice(labels))
            anchors = [box for lab, box in gts if lab == label] or [_box(rng, integer)]
            preds += [(label, _jitter(rng, anchors[i % len(anchors)], 4.0, integer), score())
                      for i in range(int(rng.integers(101, 160)))]
        order = rng.permutation(len(preds))
        preds = [preds[i] for i in order]
        images.append((gts, preds))

        per_label = Counter(label for label, _, _ in preds)
        features["over_max_dets"] += any(n > 100 for n in per_label.values())
        features["image_without_gt"] += not gts and bool(preds)
        features["ghost"] += GHOST in per_label
        features["duplicates"] += any(
            sum(1 for lab, box, _ in preds if lab == g_lab and iou_matrix([box], [g_box])[0, 0] >= 0.5) > 1 for g_lab, g_box in gts
        )
    scores = [s for _, preds in images for *_, s in preds]
    features["score_ties"] += len(scores) != len(set(scores))
    return images, features


N_CASES = 400


def test_equals_cocoeval_on_generated_cases() -> None:
    covered: Counter[str] = Counter()
    largest = 0.0
    for seed in range(N_CASES):
        images, features = random_case(seed)
        covered += features
        try:
            largest = max(largest, assert_equal_to_coco(images))
        except AssertionError as exc:
            raise AssertionError(f"case seed {seed}: {exc}") from None
    print(f"\nlargest |ours - COCOeval| over {N_CASES} generated cases: {largest:.3g}; features {dict(covered)}")
    # every situation the comparison is meant to cover occurred, several times
    for feature in ("crowded", "over_max_dets", "image_without_gt", "ghost", "duplicates", "score_ties"):
        assert covered[feature] >= 5, (feature, covered)


# --------------------------------------------------------------------------- hand-picked edges


def test_recall_on_a_hundredth_follows_cocos_linspace_grid() -> None:
    # 20 ground truths, ranked: 7 hits, a miss, then the 13 others. Recall 7/20 = 0.35 is below
    # COCO's level 0.35000000000000003, so that level reads the precision after the miss (7/8),
    # not 1: with exact decimals AP@.5 would be (36 + 65 * 20/21) / 101, not what COCOeval reports.
    gts = [("x", (30.0 * i, 0.0, 30.0 * i + 10, 10.0)) for i in range(20)]
    preds = [("x", box, 1.0 - 0.01 * i) for i, (_, box) in enumerate(gts[:7])]
    preds.append(("x", (900.0, 900.0, 910.0, 910.0), 0.5))
    preds += [("x", box, 0.4 - 0.01 * i) for i, (_, box) in enumerate(gts[7:])]
    assert_equal_to_coco([(gts, preds)])
    ap50 = detection_metrics([(gts, preds)])["per_label"]["x"]["ap50"]
    assert ap50 == pytest.approx((35 * 1.0 + 66 * 20 / 21) / 101, abs=1e-15)


def test_iou_on_a_threshold_follows_cocos_grid() -> None:
    # On paper IoU 6.3 / 7 = 0.9; in floats it is 0.8999999999999999, which is COCO's threshold
    # np.linspace(.5, .95, 10)[8] exactly: it matches at 9 of the 10 thresholds (with an exact
    # 0.9 threshold it would match at 8 and AP would be 0.8).
    gts = [("x", (0.0, 0.0, 7.0, 1.0))]
    preds = [("x", (0.0, 0.0, 6.3, 1.0), 0.9)]
    assert_equal_to_coco([(gts, preds)])
    assert detection_metrics([(gts, preds)])["per_label"]["x"]["ap"] == pytest.approx(0.9, abs=1e-15)


def test_equal_ious_go_to_the_last_ground_truth_like_cocoeval() -> None:
    # The first detection overlaps both ground truths equally; COCOeval gives it the second,
    # so the second detection (which only fits the second one) is a false positive.
    gts = [("x", (0.0, 0.0, 10.0, 10.0)), ("x", (2.0, 0.0, 12.0, 10.0))]
    # IoUs: first detection 90/110 with both; second 80/120 with the second, 60/140 with the first.
    preds = [("x", (1.0, 0.0, 11.0, 10.0), 0.9), ("x", (4.0, 0.0, 14.0, 10.0), 0.8)]
    assert_equal_to_coco([(gts, preds)])
    assert detection_metrics([(gts, preds)])["per_label"]["x"]["ap50"] == pytest.approx(51 / 101)


def test_only_the_100_best_detections_per_image_and_label_count() -> None:
    # 101 detections on one image: the 101st, the only hit, is cut; a second label is unaffected.
    gts = [("x", (0.0, 0.0, 10.0, 10.0)), ("y", (0.0, 0.0, 10.0, 10.0))]
    preds = [("x", (500.0, 500.0, 510.0, 510.0), 0.9)] * 100 + [("x", (0.0, 0.0, 10.0, 10.0), 0.1)]
    preds += [("y", (0.0, 0.0, 10.0, 10.0), 0.05)]
    assert_equal_to_coco([(gts, preds)])
    m = detection_metrics([(gts, preds)])
    assert m["per_label"]["x"]["ap"] == 0.0 and m["per_label"]["x"]["num_pred"] == 101
    assert m["per_label"]["y"]["ap"] == 1.0
    # the same detections spread over two images all count
    split = [(gts[:1], preds[:50] + preds[100:101]), ([], preds[50:100])]
    assert_equal_to_coco(split)
    assert detection_metrics(split)["per_label"]["x"]["ap"] > 0


def test_predictions_outside_the_image_are_clipped_and_counted() -> None:
    # Raw detector output: a box past the right edge and one with negative coordinates.
    gts = [("x", (0.0, 0.0, 20.0, 20.0)), ("x", (80.0, 80.0, 100.0, 100.0))]
    raw = [("x", (-6.0, -6.0, 20.0, 20.0), 0.9), ("x", (80.0, 80.0, 125.0, 125.0), 0.8), ("x", (40.0, 40.0, 50.0, 50.0), 0.7)]
    clipped = [("x", (0.0, 0.0, 20.0, 20.0), 0.9), ("x", (80.0, 80.0, 100.0, 100.0), 0.8), raw[2]]
    m = detection_metrics([(gts, raw, (100, 100))])
    assert m["num_pred_clipped"] == 2 and m["map"] == 1.0
    assert_equal_to_coco([(gts, clipped)])
    # without the image size only the negative coordinates are clipped (IoU 400/2025 < 0.5 for the other)
    m = detection_metrics([(gts, raw)])
    assert m["num_pred_clipped"] == 1 and m["per_label"]["x"]["ap50"] == pytest.approx(51 / 101)


@pytest.mark.parametrize("size", [(0, 10), (10, float("nan")), (-1, 5)])
def test_bad_image_size_is_refused(size: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="image size"):
        detection_metrics([([], [("x", (0, 0, 1, 1), 0.5)], size)])


# --------------------------------------------------------------------------- property


_coord = st.integers(0, 12).map(float)


@st.composite
def _boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    left, top = draw(_coord), draw(_coord)
    return (left, top, left + draw(st.integers(0, 8)), top + draw(st.integers(0, 8)))


_image = st.tuples(
    st.lists(st.tuples(st.sampled_from(["a", "b"]), _boxes()), max_size=5),
    st.lists(st.tuples(st.sampled_from(["a", "b", GHOST]), _boxes(), st.sampled_from([0.2, 0.5, 0.5, 0.9, 1.0])), max_size=8),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_image, min_size=1, max_size=4))
def test_property_equals_cocoeval(images: list[Image]) -> None:
    # A small grid makes equal IoUs, IoUs on a threshold, zero-area boxes and tied scores common.
    assert_equal_to_coco(images)
