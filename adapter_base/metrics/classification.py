"""Single-label classification metrics: accuracy, per-label and averaged P/R/F1, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adapter_base.metrics._labels import nan_mean, ordered_labels

NO_PREDICTION = "<none>"
"""Confusion-matrix column that counts samples whose prediction was None."""

_NAN = float("nan")


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else _NAN


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str | None],
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score single-label predictions against ground truth.

    ``y_pred[i] is None`` means the model made no prediction for sample ``i``: it
    counts as wrong (a false negative for the true label, a false positive for
    nothing) and is recorded in an extra confusion-matrix column ``"<none>"``,
    present only when at least one None occurs.

    Labels are ``labels`` in the given order followed by every other label seen in
    ``y_true`` or ``y_pred``, sorted.

    Conventions for undefined values (reported as ``float('nan')``, never as 0):

    * precision of a label that was never predicted is NaN;
    * recall of a label absent from the ground truth (support 0) is NaN;
    * F1 is ``2TP / (2TP + FP + FN)``, so it is 0 (not NaN) for a label that is in
      the ground truth but never predicted, and NaN only for a label that neither
      occurs nor is predicted;
    * macro averages are NaN-skipping means over the labels with support > 0
      (labels predicted but absent from the ground truth are left out);
    * micro averages pool every label: precision = correct / predictions made
      (None excluded), recall = correct / samples (equal to accuracy),
      F1 = their harmonic mean;
    * empty input gives NaN accuracy and averages and an empty matrix.

    Returns a JSON-ready dict (apart from NaN floats; see ``json_safe``)::

        {"task": "classification", "count": int, "accuracy": float,
         "per_label": {label: {"precision", "recall", "f1": float, "support": int}},
         "macro": {"precision", "recall", "f1": float},
         "micro": {"precision", "recall", "f1": float},
         "confusion_matrix": {"labels": [true labels (rows)],
                              "columns": [predicted labels, + "<none>" if any None],
                              "rows": [[int, ...], ...]}}
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")
    if any(label is None for label in y_true):
        raise ValueError("y_true must not contain None")

    has_none = any(p is None for p in y_pred)
    names = ordered_labels(labels, [*y_true, *(p for p in y_pred if p is not None)])
    if has_none and NO_PREDICTION in names:
        raise ValueError(f"label {NO_PREDICTION!r} is reserved for missing predictions")
    columns = names + [NO_PREDICTION] if has_none else list(names)

    index = {name: i for i, name in enumerate(names)}
    n_rows, n_cols = len(names), len(columns)
    none_col = n_cols - 1
    true_idx = np.fromiter((index[t] for t in y_true), dtype=np.int64, count=len(y_true))
    pred_idx = np.fromiter(
        (none_col if p is None else index[p] for p in y_pred), dtype=np.int64, count=len(y_pred)
    )
    matrix = np.bincount(true_idx * n_cols + pred_idx, minlength=n_rows * n_cols).reshape(
        n_rows, n_cols
    )

    square = matrix[:, :n_rows]
    tp = np.diag(square)
    support = matrix.sum(axis=1)
    predicted = square.sum(axis=0)

    per_label: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        t, s, p = int(tp[i]), int(support[i]), int(predicted[i])
        per_label[name] = {
            "precision": _ratio(t, p),
            "recall": _ratio(t, s),
            "f1": _ratio(2 * t, s + p),
            "support": s,
        }

    present = [per_label[name] for name in names if per_label[name]["support"] > 0]
    macro = {key: nan_mean(row[key] for row in present) for key in ("precision", "recall", "f1")}

    count = len(y_true)
    correct = int(tp.sum())
    made = int(predicted.sum())
    micro = {
        "precision": _ratio(correct, made),
        "recall": _ratio(correct, count),
        "f1": _ratio(2 * correct, count + made),
    }

    return {
        "task": "classification",
        "count": count,
        "accuracy": _ratio(correct, count),
        "per_label": per_label,
        "macro": macro,
        "micro": micro,
        "confusion_matrix": {
            "labels": names,
            "columns": columns,
            "rows": matrix.tolist(),
        },
    }
