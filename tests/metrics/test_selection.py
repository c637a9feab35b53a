"""``adapter_base.metrics.selection``: the headline, one named metric, the scalars a KFP Metrics artifact may hold."""

from __future__ import annotations

import pytest

from adapter_base import ValidationError
from adapter_base.metrics import headline, metric_value, scalar_metrics

METRICS = {
    "task": "classification",
    "count": 10,
    "accuracy": 0.8,
    "macro": {"precision": 0.7, "recall": 0.75, "f1": 0.72},
    "micro": {"precision": 0.8, "recall": 0.8, "f1": 0.8},
    "per_label": {"a": {"f1": 0.9}, "b": {"f1": "NaN"}},
    "model_version": 2,
    "confusion_matrix": {"labels": ["a", "b"], "columns": ["a", "b", "<none>"], "rows": [[4, 1, 0], [1, 3, 1]]},
}


@pytest.mark.parametrize("name,value", [("accuracy", 0.8), ("macro_f1", 0.72), ("macro.f1", 0.72), ("per_label.a.f1", 0.9), ("count", 10.0)])
def test_metric_value_finds_top_level_headline_and_dotted_names(name, value):
    assert metric_value(METRICS, name) == pytest.approx(value)


@pytest.mark.parametrize("name", ["nope", "per_label.c.f1", "macro"])  # per_label.b.f1 is a NaN, not missing
def test_metric_value_names_the_available_metrics_when_missing(name):
    with pytest.raises(ValidationError, match="available: .*accuracy"):
        metric_value(METRICS, name)


def test_scalar_metrics_are_finite_numbers_only():
    s = scalar_metrics({**METRICS, "bad": float("nan"), "flag": True})
    assert s["accuracy"] == 0.8 and s["macro_f1"] == 0.72 and s["micro_recall"] == 0.8 and s["count"] == 10.0
    assert "bad" not in s and "flag" not in s and "model_version" not in s and "task" not in s


def test_headline_of_a_detection_evaluation_is_its_map_figures_and_image_count():
    assert headline({"task": "detection", "map": 0.5, "map50": 0.7, "map75": 0.4, "num_images": 3}) == {
        "map": 0.5, "map50": 0.7, "map75": 0.4, "count": 3,
    }

