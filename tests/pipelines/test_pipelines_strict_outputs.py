"""Step outputs are strict JSON: the KFP backend's Go launcher cannot parse a bare ``NaN``.

Python's ``json.dumps`` writes ``NaN`` for ``float('nan')``; the kfp executor writes a
function's return value and its artifacts' metadata with it. So no step returns a float,
metrics logged to KFP are finite, artifact files are written with ``write_json``, and the
promotion gate is a bool decided from the metric (never for a non-finite one).
"""

from __future__ import annotations

import math

import pytest

from adapter_base.metrics import finite_numbers, metric_value
from adapter_base.steps.artifact_io import write_json
from adapter_base.steps.evaluate import promotion_decision
from kfp_backend import strict_json


@pytest.mark.parametrize(
    ("value", "threshold", "promote", "reason"),
    [
        (0.95, 0.9, True, "accuracy = 0.9500 >= threshold 0.9: promoted"),
        (0.9, 0.9, True, "accuracy = 0.9000 >= threshold 0.9: promoted"),
        (0.5, 0.9, False, "accuracy = 0.5000 < threshold 0.9: not promoted"),
        (math.nan, 0.0, False, "accuracy = NaN is not a finite number: not promoted"),
        (math.inf, 0.9, False, "accuracy = Infinity is not a finite number: not promoted"),
        (-math.inf, -1.0, False, "accuracy = -Infinity is not a finite number: not promoted"),
        (0.95, None, False, "accuracy = 0.9500; no threshold given: not promoted"),
    ],
)
def test_promotion_decision(value, threshold, promote, reason):
    assert promotion_decision("accuracy", value, threshold) == (promote, reason)


def test_metric_value_reads_stored_non_finite_values_as_floats_not_as_missing():
    stored = {"accuracy": 1.0, "per_label": {"3": {"recall": "NaN", "f1": 0.5}}, "macro": {"f1": "Infinity"}}
    assert math.isnan(metric_value(stored, "per_label.3.recall"))
    assert metric_value(stored, "macro.f1") == math.inf
    assert metric_value(stored, "per_label.3.f1") == 0.5
    with pytest.raises(Exception, match="no numeric metric 'per_label.4.recall'"):
        metric_value(stored, "per_label.4.recall")


def test_finite_numbers_keeps_only_finite_non_bool_numbers():
    assert finite_numbers({"a": 1, "b": 2.5, "nan": math.nan, "inf": -math.inf, "flag": True, "s": "1.0", "n": None}) == {"a": 1.0, "b": 2.5}


def test_write_json_writes_non_finite_numbers_as_strings(tmp_path):
    path = tmp_path / "out.json"
    write_json(str(path), {"loss": math.nan, "items": [1.5, math.inf], "ok": True})
    assert strict_json(path.read_text()) == {"loss": "NaN", "items": [1.5, "Infinity"], "ok": True}


def test_strict_json_rejects_what_go_rejects():
    for text in ("NaN", '{"a": NaN}', "[Infinity]", '{"a": -Infinity}'):
        with pytest.raises(ValueError):
            strict_json(text)
