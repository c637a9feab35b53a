"""Single-label classification metrics: accuracy, per-label and averaged P/R/F1, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adapter_base.metrics._labels import nan_mean, ordered_labels

NO_PREDICTION = "<none>"
"""Confusion-matrix column that counts samples whose prediction was None."""

FULL_MATRIX_MAX_LABELS = 100
"""Most labels (columns, ``"<none>"`` included) for which the dense ``confusion_matrix`` is kept:
its size, and its table's, grow with the square of the label count."""

TOP_CONFUSIONS = 50
"""How many of the most frequent confusions ``top_confusions`` lists."""

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

    Memory and time grow with the number of samples and labels, never with their
    square: pairs are counted sparsely, and the dense ``confusion_matrix`` is kept only
    up to ``FULL_MATRIX_MAX_LABELS`` columns. ``top_confusions`` always lists the
    ``TOP_CONFUSIONS`` most frequent (true, predicted) pairs with true != predicted,
    most frequent first (ties in label order).

    Returns a JSON-ready dict (apart from NaN floats; see ``json_safe``)::

        {"task": "classification", "count": int, "accuracy": float,
         "per_label": {label: {"precision", "recall", "f1": float, "support": int}},
         "macro": {"precision", "recall", "f1": float},
         "micro": {"precision", "recall", "f1": float},
         "top_confusions": [{"true": label, "predicted": label or "<none>", "count": int}, ...],
         "confusion_matrix": {"labels": [true labels (rows)],       # only up to
                              "columns": [predicted labels, + "<none>" if any None],
                              "rows": [[int, ...], ...]}}          # FULL_MATRIX_MAX_LABELS
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
    # Sparse counts of the (true, predicted) pairs that occur: at most one per sample.
    pairs, pair_counts = np.unique(true_idx * n_cols + pred_idx, return_counts=True)
    pair_true, pair_pred = np.divmod(pairs, n_cols)

    tp = np.bincount(true_idx[true_idx == pred_idx], minlength=n_rows)
    support = np.bincount(true_idx, minlength=n_rows)
    predicted = np.bincount(pred_idx[pred_idx < n_rows], minlength=n_rows)

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

    out: dict[str, Any] = {
        "task": "classification",
        "count": count,
        "accuracy": _ratio(correct, count),
        "per_label": per_label,
        "macro": macro,
        "micro": micro,
        "top_confusions": _top_confusions(pair_true, pair_pred, pair_counts, names, columns),
    }
    if n_cols <= FULL_MATRIX_MAX_LABELS:
        matrix = np.zeros((n_rows, n_cols), dtype=np.int64)
        matrix[pair_true, pair_pred] = pair_counts
        out["confusion_matrix"] = {"labels": names, "columns": columns, "rows": matrix.tolist()}
    return out


def _top_confusions(
    pair_true: np.ndarray, pair_pred: np.ndarray, counts: np.ndarray, names: list[str], columns: list[str]
) -> list[dict[str, Any]]:
    """The ``TOP_CONFUSIONS`` most frequent off-diagonal pairs, most frequent first (ties in label order)."""
    off = pair_true != pair_pred
    t, p, c = pair_true[off], pair_pred[off], counts[off]
    order = np.lexsort((p, t, -c))[:TOP_CONFUSIONS]
    return [{"true": names[t[k]], "predicted": columns[p[k]], "count": int(c[k])} for k in order]
