"""classification_metrics against hand-computed cases and scikit-learn."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from adapter_base.metrics import classification_metrics


def _confusion_to_samples(labels: list[str], rows: list[list[int]]) -> tuple[list[str], list[str]]:
    y_true, y_pred = [], []
    for t, row in zip(labels, rows):
        for p, count in zip(labels, row):
            y_true += [t] * count
            y_pred += [p] * count
    return y_true, y_pred


def test_three_labels_hand_computed() -> None:
    #            predicted a  b  c   support
    # true a              3  1  0   4
    # true b              2  1  0   3
    # true c              0  1  2   3
    # predicted totals    5  3  2   correct = 3+1+2 = 6 of 10
    rows = [[3, 1, 0], [2, 1, 0], [0, 1, 2]]
    y_true, y_pred = _confusion_to_samples(["a", "b", "c"], rows)
    random.Random(0).shuffle(pairs := list(zip(y_true, y_pred)))
    y_true, y_pred = [t for t, _ in pairs], [p for _, p in pairs]

    m = classification_metrics(y_true, y_pred)

    assert m["task"] == "classification"
    assert m["count"] == 10
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["confusion_matrix"] == {
        "labels": ["a", "b", "c"],
        "columns": ["a", "b", "c"],
        "rows": rows,
    }
    # precision = TP / predicted: a 3/5, b 1/3, c 2/2
    # recall    = TP / support:   a 3/4, b 1/3, c 2/3
    # f1 = 2TP / (support + predicted): a 6/9, b 2/6, c 4/5
    expected = {
        "a": (3 / 5, 3 / 4, 6 / 9, 4),
        "b": (1 / 3, 1 / 3, 2 / 6, 3),
        "c": (1.0, 2 / 3, 4 / 5, 3),
    }
    for label, (p, r, f, s) in expected.items():
        row = m["per_label"][label]
        assert row["precision"] == pytest.approx(p)
        assert row["recall"] == pytest.approx(r)
        assert row["f1"] == pytest.approx(f)
        assert row["support"] == s
    # macro P = (0.6 + 1/3 + 1) / 3 = 29/45; R = (0.75 + 1/3 + 2/3) / 3 = 7/12; F1 = (2/3 + 1/3 + 0.8) / 3 = 0.6
    assert m["macro"]["precision"] == pytest.approx(29 / 45)
    assert m["macro"]["recall"] == pytest.approx(7 / 12)
    assert m["macro"]["f1"] == pytest.approx(0.6)
    # micro: every sample has one prediction, so P = R = F1 = accuracy = 6/10
    for key in ("precision", "recall", "f1"):
        assert m["micro"][key] == pytest.approx(0.6)


def test_missing_predictions_counted_wrong_and_in_none_column() -> None:
    m = classification_metrics(["a", "a", "b"], ["a", None, None])

    assert m["confusion_matrix"] == {
        "labels": ["a", "b"],
        "columns": ["a", "b", "<none>"],
        "rows": [[1, 0, 1], [0, 0, 1]],
    }
    assert m["accuracy"] == pytest.approx(1 / 3)
    a, b = m["per_label"]["a"], m["per_label"]["b"]
    # a: P 1/1, R 1/2, F1 2*1/(2+1); b: never predicted -> P NaN, R 0/1, F1 0/(1+0) = 0
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert math.isnan(b["precision"])
    assert (b["recall"], b["f1"]) == (0.0, 0.0)
    # macro skips NaN: P = 1; R = (0.5 + 0)/2; F1 = (2/3 + 0)/2
    assert m["macro"] == pytest.approx({"precision": 1.0, "recall": 0.25, "f1": 1 / 3})
    # micro: P = 1 correct / 1 prediction made, R = 1/3, F1 = 2*1/(3+1)
    assert m["micro"] == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5})


def test_no_none_column_without_missing_predictions() -> None:
    m = classification_metrics(["a"], ["a"])
    assert m["confusion_matrix"]["columns"] == ["a"]


def test_label_order_and_labels_absent_from_ground_truth() -> None:
    # "c" and "a" given; "z" only predicted; "b" only in truth; "q" given but never seen.
    m = classification_metrics(["a", "a", "b"], ["a", "z", "b"], labels=["c", "a", "q", "c"])

    assert m["confusion_matrix"]["labels"] == ["c", "a", "q", "b", "z"]
    assert list(m["per_label"]) == ["c", "a", "q", "b", "z"]
    z = m["per_label"]["z"]
    # predicted once, never right, no support: P 0/1, R undefined, F1 0/(0+1)
    assert z["precision"] == 0.0 and math.isnan(z["recall"]) and z["f1"] == 0.0
    for label in ("c", "q"):
        row = m["per_label"][label]
        assert row["support"] == 0
        assert all(math.isnan(row[k]) for k in ("precision", "recall", "f1"))
    # macro over labels with support (a, b): P (1+1)/2, R (1/2+1)/2, F1 (2/3+1)/2
    assert m["macro"] == pytest.approx({"precision": 1.0, "recall": 0.75, "f1": 5 / 6})
    # micro pools z's false positive: P 2/3, R 2/3
    assert m["micro"]["precision"] == pytest.approx(2 / 3)


def test_empty_input() -> None:
    m = classification_metrics([], [])
    assert m["count"] == 0
    assert math.isnan(m["accuracy"])
    assert all(math.isnan(v) for v in (*m["macro"].values(), *m["micro"].values()))
    assert m["per_label"] == {}
    assert m["confusion_matrix"] == {"labels": [], "columns": [], "rows": []}


def test_empty_input_with_labels() -> None:
    m = classification_metrics([], [], labels=["a"])
    assert m["confusion_matrix"]["rows"] == [[0]]
    assert math.isnan(m["per_label"]["a"]["f1"])


def test_invalid_input() -> None:
    with pytest.raises(ValueError, match="items"):
        classification_metrics(["a"], [])
    with pytest.raises(ValueError, match="None"):
        classification_metrics([None], ["a"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="reserved"):
        classification_metrics(["<none>"], [None])


def test_matches_scikit_learn_on_random_data() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    sentinel = "__no_prediction__"
    rng = np.random.default_rng(1234)
    for _ in range(25):
        n = int(rng.integers(1, 80))
        y_true = [str(x) for x in rng.choice(list("abcde"), n, p=[0.4, 0.3, 0.15, 0.1, 0.05])]
        y_pred = [
            None if rng.random() < 0.1 else str(rng.choice(list("abcdef"))) for _ in range(n)
        ]
        m = classification_metrics(y_true, y_pred)
        names = m["confusion_matrix"]["labels"]
        present = [label for label in names if label in set(y_true)]
        y_sk = [sentinel if p is None else p for p in y_pred]

        assert m["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_sk))
        cm = sk.confusion_matrix(y_true, y_sk, labels=[*names, sentinel])
        rows = np.asarray(m["confusion_matrix"]["rows"])
        assert (rows[:, : len(names)] == cm[: len(names), : len(names)]).all()
        assert (rows.sum(axis=1) == cm[: len(names)].sum(axis=1)).all()

        p, r, f, s = sk.precision_recall_fscore_support(
            y_true, y_sk, labels=names, zero_division=np.nan
        )
        ours = m["per_label"]
        np.testing.assert_allclose([ours[k]["precision"] for k in names], p, atol=1e-12)
        np.testing.assert_allclose([ours[k]["recall"] for k in names], r, atol=1e-12)
        np.testing.assert_allclose([ours[k]["support"] for k in names], s)
        # sklearn reports F1 NaN only where both P and R are; otherwise 2TP/(2TP+FP+FN)
        np.testing.assert_allclose([ours[k]["f1"] for k in names], f, atol=1e-12)

        for key, sk_key in (("precision", 0), ("recall", 1), ("f1", 2)):
            macro = sk.precision_recall_fscore_support(
                y_true, y_sk, labels=present, average="macro", zero_division=np.nan
            )[sk_key]
            micro = sk.precision_recall_fscore_support(
                y_true, y_sk, labels=names, average="micro", zero_division=np.nan
            )[sk_key]
            np.testing.assert_allclose(m["macro"][key], macro, atol=1e-12)
            np.testing.assert_allclose(m["micro"][key], micro, atol=1e-12)
