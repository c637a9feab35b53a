"""Evaluation at many labels: memory, time and the report stay linear, and a rendering
failure never costs the computed metrics.

The dense confusion matrix (and its table and figure) grows with the square of the label
count: 2,000 labels took 609 MB and wrote a 40 MB report, 5,500 crashed matplotlib after
every prediction was written. Above ``FULL_MATRIX_MAX_LABELS`` only the top confusions are kept.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from adapter_base import AnnotationCollection, BaseModelAdapter, Registry
from adapter_base.metrics import classification_metrics, json_safe, render_html_report
from adapter_base.metrics.classification import FULL_MATRIX_MAX_LABELS, NO_PREDICTION, TOP_CONFUSIONS

MB = 1024 * 1024


class LabelFromMetadata(BaseModelAdapter):
    """Predicts ``item.metadata["pred"]``."""

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.model = "metadata"

    def save(self, local_path: str, **kwargs: Any) -> None:
        Path(local_path, "model.txt").write_text("metadata")

    def predict(self, batch: Any, **kwargs: Any) -> list[AnnotationCollection]:
        out = []
        for item in kwargs["items"]:
            coll = AnnotationCollection()
            coll.add_classification(item.metadata["pred"], confidence=0.5)
            out.append(coll)
        return out


def _samples(n_labels: int, n: int, seed: int) -> tuple[list[str], list[str], list[str | None]]:
    """Labels and ``n`` (truth, prediction) pairs: mostly right, a few frequent confusions, some None."""
    rng = np.random.default_rng(seed)
    labels = [f"label-{i:05d}" for i in range(n_labels)]
    truth = rng.integers(0, n_labels, n)
    pred = truth.copy()
    wrong = rng.random(n) < 0.3
    pred[wrong] = rng.integers(0, n_labels, int(wrong.sum()))
    hot = rng.random(n) < 0.05  # a frequent confusion: 3 -> 7
    truth[hot], pred[hot] = 3, 7
    y_pred: list[str | None] = [labels[p] for p in pred]
    for k in np.flatnonzero(rng.random(n) < 0.02):
        y_pred[k] = None
    return labels, [labels[t] for t in truth], y_pred


def test_many_labels_keep_top_confusions_that_match_scikit_learn() -> None:
    labels, y_true, y_pred = _samples(300, 6000, seed=1)
    m = classification_metrics(y_true, y_pred, labels)
    assert "confusion_matrix" not in m  # 301 columns > FULL_MATRIX_MAX_LABELS

    sentinel = "\x00none"
    y_sk = [sentinel if p is None else p for p in y_pred]
    cm = confusion_matrix(y_true, y_sk, labels=[*labels, sentinel])[: len(labels)]
    expected = sorted(
        ((-int(cm[i, j]), i, j) for i, j in zip(*np.nonzero(cm)) if i != j),
    )[:TOP_CONFUSIONS]
    columns = [*labels, NO_PREDICTION]
    assert m["top_confusions"] == [{"true": labels[i], "predicted": columns[j], "count": -c} for c, i, j in expected]
    assert m["top_confusions"][0] == {"true": "label-00003", "predicted": "label-00007", "count": int(cm[3, 7])}

    p, r, f, s = precision_recall_fscore_support(y_true, y_sk, labels=labels, zero_division=np.nan)
    for k, label in enumerate(labels):
        row = m["per_label"][label]
        assert row["support"] == s[k]
        np.testing.assert_allclose([row["precision"], row["recall"], row["f1"]], [p[k], r[k], f[k]], equal_nan=True)


def test_few_labels_keep_the_full_matrix_and_the_same_top_confusions() -> None:
    labels, y_true, y_pred = _samples(FULL_MATRIX_MAX_LABELS - 1, 3000, seed=2)  # 99 labels + "<none>"
    m = classification_metrics(y_true, y_pred, labels)
    rows = np.asarray(m["confusion_matrix"]["rows"])
    assert rows.shape == (FULL_MATRIX_MAX_LABELS - 1, FULL_MATRIX_MAX_LABELS) and rows.sum() == 3000
    cols = m["confusion_matrix"]["columns"]
    for entry in m["top_confusions"]:
        assert rows[labels.index(entry["true"]), cols.index(entry["predicted"])] == entry["count"]


def test_5500_labels_metrics_and_report_stay_small_and_fast() -> None:
    labels, y_true, y_pred = _samples(5500, 20_000, seed=3)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        raw = classification_metrics(y_true, y_pred, labels)
        assert "confusion_matrix" not in raw  # before anything else: the dense one took 242 MB
        m = json_safe(raw)
        page = render_html_report(m, title="5,500 labels")
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(m["top_confusions"]) == TOP_CONFUSIONS
    assert len(json.dumps(m)) < 2 * MB
    assert len(page) < 4 * MB
    assert "<h2>Top confusions</h2>" in page and "5500 labels: the full confusion matrix is not kept" in page
    assert "<td class=\"label\">label-00003</td><td class=\"label\">label-00007</td>" in page
    assert peak < 50 * MB, f"peak {peak / MB:.0f} MB"  # the dense matrix alone was 242 MB
    assert seconds < 60


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(str(tmp_path / "store")) as registry:
        yield registry


def test_evaluation_with_5500_labels_completes_and_stores_a_bounded_report(registry: Registry) -> None:
    labels = [f"label-{i:05d}" for i in range(5500)]
    ds = registry.create_dataset("many", labels=labels)
    for i in range(400):
        gt = AnnotationCollection()
        gt.add_classification(labels[i * 13])
        pred = labels[i * 13] if i % 4 else labels[(i * 13 + 1) % 5500]
        registry.add_item(ds, f"test/{i:04d}.txt", b"x", subsets=["test"], metadata={"pred": pred}, annotations=gt)
    model = registry.create_model("many-model", labels=labels)
    result = LabelFromMetadata(registry=registry).evaluate_model(model, ds, filters={"subset": "test"})

    assert result.metrics["count"] == 400 and result.metrics["accuracy"] == pytest.approx(0.75)
    assert "confusion_matrix" not in result.metrics and len(result.metrics["top_confusions"]) == TOP_CONFUSIONS
    metrics_json = registry.store.get_bytes(result.metrics_key)
    report = registry.store.get_bytes(result.report_key)
    assert json.loads(metrics_json) == result.metrics
    assert len(metrics_json) < 2 * MB and len(report) < 4 * MB
    assert b"<h2>Top confusions</h2>" in report
    assert registry.get_model(model.id).metrics["evaluation"]["accuracy"] == pytest.approx(0.75)


def test_a_rendering_failure_is_noted_in_the_report_and_the_metrics_are_stored(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from matplotlib.figure import Figure

    def savefig(self: Figure, *args: Any, **kwargs: Any) -> None:
        raise MemoryError("Agg cannot allocate the canvas")  # as matplotlib does on a huge figure

    monkeypatch.setattr(Figure, "savefig", savefig)
    ds = registry.create_dataset("few", labels=["a", "b"])
    for i, (truth, pred) in enumerate([("a", "a"), ("a", "b"), ("b", "b")]):
        gt = AnnotationCollection()
        gt.add_classification(truth)
        registry.add_item(ds, f"test/{i}.txt", b"x", subsets=["test"], metadata={"pred": pred}, annotations=gt)
    model = registry.create_model("few-model", labels=["a", "b"])
    result = LabelFromMetadata(registry=registry).evaluate_model(model, ds, filters={"subset": "test"})

    assert json.loads(registry.store.get_bytes(result.metrics_key))["confusion_matrix"]["rows"] == [[1, 1], [0, 1]]
    report = registry.store.get_bytes(result.report_key).decode()
    assert "Could not render the confusion matrix figure: MemoryError: Agg cannot allocate the canvas" in report
    assert "<h2>Per label</h2>" in report and "true \\ predicted" in report  # the tables are still there
    assert registry.get_model(model.id).metrics["evaluation"]["accuracy"] == pytest.approx(2 / 3)
    assert "could not render the confusion matrix figure" in caplog.text
