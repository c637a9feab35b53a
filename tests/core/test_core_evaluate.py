"""``evaluate_model``: stored metrics and report, hand-computed scores, detection mAP."""

from __future__ import annotations

import json

import pytest

from adapter_base import AdapterError, AnnotationCollection, StoreError, ValidationError
from adapter_base.flows import predict as predict_flow
from core_support import MetadataAdapter, png_bytes


def strict_json(raw):
    def no_constant(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(raw, parse_constant=no_constant)


# (ground truth, prediction): 6 of 10 right; "c" is never predicted
PAIRS = [("a", "a")] * 3 + [("a", "b")] + [("b", "b")] * 3 + [("b", "a")] + [("c", "a"), ("c", "b")]


def classification_dataset(registry):
    ds = registry.create_dataset("hand", labels=["a", "b", "c"])
    for i, (truth, pred) in enumerate(PAIRS):
        gt = AnnotationCollection()
        gt.add_classification(truth)
        registry.add_item(ds, f"test/{i:02d}.png", png_bytes(i), subsets=["test"], metadata={"pred": pred}, annotations=gt)
    registry.add_item(ds, "test/no-gt.png", png_bytes(99), subsets=["test"], metadata={"pred": "a"})
    registry.add_item(ds, "train/0.png", png_bytes(1), subsets=["train"], metadata={"pred": "a"}, annotations=gt)
    return ds


def test_evaluate_classification_matches_hand_computed_scores(registry):
    ds = classification_dataset(registry)
    model = registry.create_model("hand-model", labels=["a", "b", "c"])
    adapter = MetadataAdapter(registry=registry)
    result = adapter.evaluate_model(model, ds, filters={"subset": "test"})
    m = result.metrics
    assert m["count"] == 10
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["per_label"]["a"]["precision"] == pytest.approx(3 / 5) and m["per_label"]["a"]["recall"] == pytest.approx(3 / 4)
    assert m["per_label"]["b"]["precision"] == pytest.approx(3 / 5) and m["per_label"]["b"]["recall"] == pytest.approx(3 / 4)
    assert m["per_label"]["c"]["precision"] == "NaN"  # never predicted: strict-JSON NaN, not 0
    assert m["per_label"]["c"]["recall"] == 0.0 and m["per_label"]["c"]["support"] == 2
    assert m["confusion_matrix"]["rows"] == [[3, 1, 0], [1, 3, 0], [1, 1, 0]]
    assert m["items_without_ground_truth"] == 1 and m["items_failed"] == 0
    assert m["model_id"] == model.id and m["dataset_id"] == ds.id

    # stored under the model: metrics.json next to report.html
    prefix = f"models/{model.id}/evaluations/000000/"
    assert result.metrics_key.startswith(prefix) and result.metrics_key.endswith("/metrics.json")
    assert result.report_key == result.metrics_key[: -len("metrics.json")] + "report.html"
    stored = strict_json(registry.store.get_bytes(result.metrics_key))
    assert stored == m
    html = registry.store.get_bytes(result.report_key).decode()
    assert html.lstrip().lower().startswith("<!doctype html") and "hand-model" in html
    assert result.report_uri.endswith(result.report_key)

    # the model's latest metrics carry the summary
    evaluation = registry.get_model(model.id).metrics["evaluation"]
    assert evaluation["accuracy"] == pytest.approx(0.6)
    assert evaluation["count"] == 10 and evaluation["report"] == result.report_key and evaluation["dataset_id"] == ds.id
    assert result.summary["accuracy"] == pytest.approx(0.6)

    # predictions were written (replacing older ones) for the evaluated subset only
    for item in registry.iter_items(ds):
        assert (registry.get_predictions(item, model.id) is not None) == ("test" in item.subsets)


def test_reevaluation_keeps_earlier_reports_and_updates_the_summary(local_registry):
    ds = classification_dataset(local_registry)
    model = local_registry.create_model("again", labels=["a", "b", "c"])
    adapter = MetadataAdapter(registry=local_registry)
    first = adapter.evaluate_model(model, ds, filters={"subset": "test"})
    item = next(local_registry.iter_items(ds, {"path_prefix": "test/03.png"}))
    item.metadata["pred"] = "a"  # fix one prediction: 7 of 10
    local_registry.update_item(item)
    second = adapter.evaluate_model(model, ds, filters={"subset": "test"})
    assert second.metrics["accuracy"] == pytest.approx(0.7)
    assert local_registry.store.exists(first.metrics_key) and first.metrics_key != second.metrics_key
    assert local_registry.get_model(model.id).metrics["evaluation"]["accuracy"] == pytest.approx(0.7)


def test_evaluate_box_model_gives_map(local_registry):
    ds = local_registry.create_dataset("boxes", labels=["car", "person"])
    truth = [[("car", [0, 0, 10, 10]), ("person", [20, 20, 30, 40])], [("car", [5, 5, 15, 15])]]
    for i, boxes in enumerate(truth):
        gt = AnnotationCollection()
        for label, box in boxes:
            gt.add_box(*box, label)
        preds = [{"box": box, "label": label, "confidence": 0.9} for label, box in boxes]
        local_registry.add_item(ds, f"{i}.png", png_bytes(i, size=(50, 50)), metadata={"boxes": preds}, annotations=gt)
    model = local_registry.create_model("det", labels=["car", "person"], output_type="box")
    result = MetadataAdapter(registry=local_registry).evaluate_model(model, ds)
    assert {"map", "map50", "map75"} <= set(result.metrics)
    assert result.metrics["map"] == pytest.approx(1.0) and result.metrics["map50"] == pytest.approx(1.0)
    assert {"map", "map50", "map75"} <= set(local_registry.get_model(model.id).metrics["evaluation"])
    strict_json(local_registry.store.get_bytes(result.metrics_key))


def test_evaluate_without_ground_truth_is_a_clear_error(local_registry):
    ds = local_registry.create_dataset("nogt")
    local_registry.add_item(ds, "a.png", png_bytes(1), metadata={"pred": "a"})
    model = local_registry.create_model("m")
    with pytest.raises(ValidationError, match="ground truth") as exc:
        MetadataAdapter(registry=local_registry).evaluate_model(model, ds)
    assert exc.value.field == "filters"


def test_evaluation_counts_failed_items(local_registry):
    ds = classification_dataset(local_registry)
    local_registry.add_item(ds, "test/corrupt.png", b"garbage", subsets=["test"], metadata={"pred": "a"})
    model = local_registry.create_model("m", labels=["a", "b", "c"])
    result = MetadataAdapter(registry=local_registry).evaluate_model(model, ds, filters={"subset": "test"})
    assert result.metrics["items_failed"] == 1 and result.metrics["count"] == 10
    assert not result.prediction.ok


def test_a_prediction_run_that_stopped_early_is_not_scored(local_registry, monkeypatch):
    """The listing breaks after 4 items: metrics of those 4 would pass for the subset's."""
    ds = classification_dataset(local_registry)
    model = local_registry.create_model("m", labels=["a", "b", "c"])
    run_predictions = predict_flow.run_predictions

    def listing_breaks_after_four(adapter, source, **kwargs):
        def source_of_four():
            for n, result in enumerate(source):
                if n == 4:
                    raise StoreError("connection reset while listing")
                yield result

        return run_predictions(adapter, source_of_four(), **kwargs)

    monkeypatch.setattr(predict_flow, "run_predictions", listing_breaks_after_four)
    with pytest.raises(AdapterError, match="stopped before it finished") as info:
        MetadataAdapter(registry=local_registry).evaluate_model(model, ds, filters={"subset": "test"})
    assert "StoreError: connection reset while listing" in str(info.value)
    assert "evaluation" not in local_registry.get_model(model.id).metrics
    assert not list(local_registry.store.list(f"models/{model.id}/evaluations/")), "no evaluation was stored"


@pytest.mark.parametrize("predicted, none_match", [(["a", "b", "cat", "dog"], False), (["cat", "dog"], True)])
def test_evaluate_warns_once_when_predicted_labels_are_not_the_datasets(local_registry, caplog, predicted, none_match):
    registry = local_registry
    ds = registry.create_dataset("labels", labels=["a", "b"])
    for i in range(8):
        gt = AnnotationCollection()
        gt.add_classification("ab"[i % 2])
        registry.add_item(ds, f"test/{i}.png", png_bytes(i), subsets=["test"], metadata={"pred": predicted[i % len(predicted)]}, annotations=gt)
    model = registry.create_model("renamed", labels=["a", "b"])
    with caplog.at_level("WARNING"):
        result = MetadataAdapter(registry=registry).evaluate_model(model, ds, filters={"subset": "test"})
    warnings = result.metrics["warnings"]
    assert "'cat', 'dog'" in warnings[0] and "not labels of dataset 'labels'" in warnings[0]
    assert (len(warnings) == 2 and "no predicted label is a label of the dataset" in warnings[1]) == none_match
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "predicted labels" in r.getMessage()]
    assert len(logged) == 1  # once, not per item
    assert "not labels of dataset" in registry.store.get_bytes(result.report_key).decode()


def test_evaluate_has_no_label_warning_when_the_labels_match(local_registry):
    ds = classification_dataset(local_registry)
    result = MetadataAdapter(registry=local_registry).evaluate_model(local_registry.create_model("m", labels=["a", "b", "c"]), ds, filters={"subset": "test"})
    assert result.metrics["warnings"] == []


def test_the_evaluate_command_warns_about_labels_the_dataset_lacks(tmp_path):
    from adapter_base import Registry

    store = str(tmp_path / "store")
    with Registry.open(store) as registry:
        ds = registry.create_dataset("labels", labels=["a", "b"])
        for i in range(4):
            gt = AnnotationCollection()
            gt.add_classification("ab"[i % 2])
            registry.add_item(ds, f"test/{i}.png", png_bytes(i), subsets=["test"], metadata={"pred": "cat"}, annotations=gt)
        registry.create_model("renamed", adapter="core_support:MetadataAdapter", labels=["cat", "dog"], dataset_id=ds.id)
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent), str(here.parents[1])])}
    cli = str(Path(sys.executable).parent / "model-adapter")
    proc = subprocess.run(
        [cli, "evaluate", "renamed", "--dataset", "labels", "--subset", "test", "--allow-untrained", "--store", store],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    err = proc.stderr
    assert proc.returncode == 0, err
    assert err.count("are not labels of dataset 'labels': 'cat'") == 1 and "no predicted label is a label of the dataset" in err
