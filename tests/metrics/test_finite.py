"""json_safe / from_json_safe round trips and format_metric."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from adapter_base.metrics import (
    classification_metrics,
    detection_metrics,
    format_metric,
    from_json_safe,
    json_safe,
)


def _same(a: object, b: object) -> bool:
    """Structural equality where NaN equals NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def test_json_safe_round_trip_with_non_finite_and_numpy() -> None:
    original = {
        "nan": float("nan"),
        "inf": math.inf,
        "ninf": -math.inf,
        "np_nan": np.float32("nan"),
        "np_int": np.int64(3),
        "np_bool": np.bool_(True),
        "array": np.array([[1.5, np.inf], [np.nan, -2.0]]),
        "tuple": (1, "a", None),
        "nested": [{"x": np.float64(0.25)}],
        np.int64(7): "numpy key",
    }
    encoded = json_safe(original)
    text = json.dumps(encoded, allow_nan=False)  # must not raise
    decoded = from_json_safe(json.loads(text))

    assert encoded["nan"] == "NaN" and encoded["inf"] == "Infinity" and encoded["ninf"] == "-Infinity"
    assert encoded["array"] == [[1.5, "Infinity"], ["NaN", -2.0]]
    assert type(encoded["np_int"]) is int and type(encoded["np_bool"]) is bool
    assert 7 in encoded
    expected = {
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "np_nan": math.nan,
        "np_int": 3,
        "np_bool": True,
        "array": [[1.5, math.inf], [math.nan, -2.0]],
        "tuple": [1, "a", None],
        "nested": [{"x": 0.25}],
        "7": "numpy key",  # JSON object keys are strings
    }
    assert _same(decoded, expected)


@pytest.mark.parametrize(
    "metrics",
    [
        classification_metrics(["a", "b"], ["a", None], labels=["never"]),
        detection_metrics([([("x", (0, 0, 1, 1))], [("ghost", (0, 0, 1, 1), 0.5)])]),
        classification_metrics([], []),
    ],
)
def test_metric_dicts_survive_strict_json(metrics: dict) -> None:
    text = json.dumps(json_safe(metrics), allow_nan=False)
    assert _same(from_json_safe(json.loads(text)), json.loads(json.dumps(metrics)))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.93412, "0.934"),
        (np.float32(0.5), "0.500"),
        (1.0, "1.000"),
        (12, "12"),
        (np.int64(12), "12"),
        (float("nan"), "NaN"),
        ("NaN", "NaN"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (None, "n/a"),
    ],
)
def test_format_metric(value: object, text: str) -> None:
    assert format_metric(value) == text
