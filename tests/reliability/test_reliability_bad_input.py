"""Bad input: each case fails with an error that names the culprit, and nothing else is lost.

Item-level problems fail that item only (the per-item report says which item, at which
stage, and why) while every other item is predicted; record-level problems raise an
error naming the record and field, and leave the store as it was.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from adapter_base import (
    AdapterContractError,
    Annotation,
    AnnotationCollection,
    Registry,
    StoreError,
    ValidationError,
    load_adapter_class,
    open_store,
)
from adapter_base.registry import layout
from reliability_support import (
    SlowAdapter,
    dataset_with_model,
    one_set_each,
    png_bytes,
    report_json,
    run_cli,
    scripted,
    subprocess_env,
)

pytestmark = [pytest.mark.reliability]


def keys(registry: Registry) -> dict[str, int]:
    return {o.key: o.size for o in registry.store.list()}


def failure_of(report, item):
    found = [f for f in report.failures if f.item_id == item.id]
    assert len(found) == 1, report.summary()
    return found[0]


# --------------------------------------------------------------------------- item bytes


def test_corrupt_empty_truncated_and_unpreparable_items_fail_alone(local_registry: Registry, tmp_path: Path) -> None:
    """Through the CLI (a real process): exit 1, each bad item named with its path and reason."""
    ds, good, model = dataset_with_model(local_registry, 4)
    bad = {
        "bad/garbage.png": (b"this is not a png at all", "cannot decode image"),
        "bad/empty.png": (b"", "empty file (0 bytes)"),
        "bad/truncated.png": (png_bytes(10, (64, 64))[:40], "cannot decode image"),
        "bad/blob.bin": (b"\x00\x01\x02", "no default preparation for 'application/octet-stream'"),
    }
    bad_items = {path: local_registry.add_item(ds, path, data) for path, (data, _) in bad.items()}

    result = run_cli(["predict", model.name, "--dataset", ds.name, "--store", local_registry.store.uri, "--report"])
    assert result.returncode == 1, result.stdout + result.stderr
    report = report_json(result.stdout)
    assert (report["succeeded"], report["failed"], report["total"]) == (4, 4, 8)
    by_id = {f["item_id"]: f for f in report["failures"]}
    for path, item in bad_items.items():
        failure = by_id[item.id]
        assert (failure["stage"], failure["path"]) == ("prepare", path)
        assert item.id in failure["error"] and path in failure["error"] and bad[path][1] in failure["error"], failure
        assert f"FAILED {item.id} ({path}) at prepare" in result.stdout
        assert local_registry.prediction_model_ids(item) == []
    one_set_each(local_registry, good, model)


def test_unsupported_mimetypes_are_refused_before_anything_is_stored(local_registry: Registry) -> None:
    ds = local_registry.create_dataset("d")
    before = keys(local_registry)
    with pytest.raises(ValidationError, match=r"Item\.mimetype: unsupported mimetype 'video/mp4'"):
        local_registry.add_item(ds, "clips/clip.mp4", b"\x00\x00\x00\x18ftypmp42")
    with pytest.raises(ValidationError, match="unsupported mimetype 'application/x-msdownload'"):
        local_registry.add_item(ds, "tool.png", b"MZ", mimetype="application/x-msdownload")
    assert keys(local_registry) == before


@pytest.mark.parametrize(
    "path",
    ["../escape.png", "a/../../escape.png", "/etc/passwd", "\\\\server\\share.png", "C:\\Windows\\evil.png", "a//b.png", "./a.png", "a/\x00.png", ""],
)
def test_item_paths_that_could_escape_are_refused(local_registry: Registry, path: str) -> None:
    ds = local_registry.create_dataset("d")
    before = keys(local_registry)
    with pytest.raises(ValidationError) as info:
        local_registry.add_item(ds, path, png_bytes(1), mimetype="image/png")
    assert info.value.field == "path" and str(info.value).startswith("Item.path:")
    assert path == "" or repr(path) in str(info.value)
    assert keys(local_registry) == before


def test_tampered_or_truncated_item_records_are_reported_by_id_and_the_rest_predicted(local_registry: Registry) -> None:
    ds, items, model = dataset_with_model(local_registry, 4)
    store = local_registry.store
    evil = items[0].to_dict() | {"path": "../../../etc/passwd"}
    store.put_json(layout.item_record(ds.id, items[0].id), evil)
    record = layout.item_record(ds.id, items[1].id)
    store.put_bytes(record, store.get_bytes(record)[:25])
    store.put_json(layout.item_record(ds.id, items[2].id), {"path": "x.png"})

    adapter = SlowAdapter(registry=local_registry)
    adapter.load_from_model(model)
    report = adapter.predict_dataset(ds)
    assert (report.succeeded, report.failed) == (1, 3)
    assert [f.stage for f in report.failures] == ["list"] * 3
    assert "Item.path" in failure_of(report, items[0]).error and "'../../../etc/passwd'" in failure_of(report, items[0]).error
    assert "is not valid JSON" in failure_of(report, items[1]).error and items[1].id in failure_of(report, items[1]).error
    assert "missing required field" in failure_of(report, items[2]).error
    one_set_each(local_registry, items[3:], model)


# --------------------------------------------------------------------------- annotations


def test_truncated_or_malformed_ground_truth_names_the_item(local_registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    ds, items, model = dataset_with_model(local_registry, 6)
    store = local_registry.store
    truncated, nan, inverted = items[0], items[1], items[2]
    key = layout.ground_truth(ds.id, truncated.id)
    store.put_bytes(key, store.get_bytes(key)[:30])
    store.put_bytes(
        layout.ground_truth(ds.id, nan.id),
        b'{"annotations": [{"type": "point", "label": "p", "coordinates": {"x": NaN, "y": 1}}], "item_id": null}',
    )
    box = Annotation(type="box", label="b", coordinates={"left": 5, "top": 0, "right": 1, "bottom": 2})
    store.put_json(layout.ground_truth(ds.id, inverted.id), {"annotations": [box.to_dict()], "item_id": None})

    with pytest.raises(StoreError, match="is not valid JSON") as info:
        local_registry.get_ground_truth(truncated)
    assert truncated.id in str(info.value)
    with pytest.raises(ValidationError, match=r"annotations\[0\]\.coordinates\.x: must be finite, got nan"):
        local_registry.get_ground_truth(nan)
    with pytest.raises(ValidationError, match=r"annotations\[0\]\.coordinates: box has right < left"):
        local_registry.get_ground_truth(inverted)
    with pytest.raises(ValidationError, match=r"AnnotationCollection\.<json>: malformed JSON"):
        AnnotationCollection.from_json('{"annotations": [{"type": "box"')

    # Evaluation goes on without those three items and says which they were.
    adapter = SlowAdapter(registry=local_registry)
    with caplog.at_level(logging.ERROR):
        result = adapter.evaluate_model(model, ds)
    assert result.metrics["count"] == 3 and result.metrics["items_without_ground_truth"] == 3
    for item in (truncated, nan, inverted):
        assert item.id in caplog.text
    one_set_each(local_registry, items, model)  # the predictions themselves are all there


def test_resume_predicts_again_an_item_whose_prediction_set_is_unreadable(local_registry: Registry) -> None:
    ds, items, model = dataset_with_model(local_registry, 4)
    adapter = SlowAdapter(registry=local_registry)
    adapter.load_from_model(model)
    first = adapter.predict_dataset(ds)
    key = layout.predictions(ds.id, items[0].id, model.id, model.version)
    local_registry.store.put_bytes(key, local_registry.store.get_bytes(key)[:20])  # e.g. hand-edited
    report = adapter.predict_dataset(ds, resume=True)
    assert report.ok and (report.skipped, report.succeeded) == (3, 1), report.summary()
    sets = one_set_each(local_registry, items, model)
    assert sets[items[0].id].run_id == report.run_id
    assert {sets[i.id].run_id for i in items[1:]} == {first.run_id}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Annotation.classification("a", confidence=float("nan")), "ModelInfo.confidence: must be finite"),
        (lambda: Annotation.classification("a", confidence=float("inf")), "ModelInfo.confidence: must be finite"),
        (lambda: Annotation.classification("a", confidence=1.5), "ModelInfo.confidence: must be <= 1.0"),
        (lambda: Annotation.classification("a", confidence=-0.1), "ModelInfo.confidence: must be >= 0.0"),
        (lambda: Annotation.box(float("nan"), 0, 1, 1, "b"), "coordinates.left: must be finite"),
        (lambda: Annotation.box(0, 0, float("inf"), 1, "b"), "coordinates.right: must be finite"),
        (lambda: Annotation.point(-1, 2, "p"), "coordinates.x: must be >= 0"),
        (lambda: Annotation.polygon([(0, 0), (1, float("nan")), (2, 2)], "p"), "coordinates.[1].y: must be finite"),
        (lambda: Annotation.box("left", 0, 1, 1, "b"), "Annotation.coordinates: expected a number, got 'left'"),
    ],
)
def test_annotation_builders_refuse_non_finite_and_out_of_range_values(build, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert message in str(info.value)


def test_predictions_with_bad_numbers_fail_per_item_and_nothing_non_finite_is_stored(local_registry: Registry) -> None:
    # A box with a negative coordinate is raw detector output, accepted and clipped when evaluated
    # (tests/metrics/test_detection_evaluation.py), so "negative_box" is not among the refusals.
    modes = ["nan_confidence", "inf_confidence", "big_confidence", "negative_confidence", "nan_box", "inf_point", "inverted_box", "not_annotation"]
    ds, items, model, adapter = scripted(local_registry, [{}] + [{"result": m} for m in modes] + [{}], batch_size=4)
    report = adapter.predict_dataset(ds)
    assert (report.succeeded, report.failed) == (2, len(modes)), report.summary()
    expected = {
        "nan_confidence": "prediction 0.confidence: must be finite, got nan",
        "inf_confidence": "prediction 0.confidence: must be finite, got inf",
        "big_confidence": "prediction 0.confidence: must be <= 1.0, got 1.5",
        "negative_confidence": "prediction 0.confidence: must be >= 0.0, got -0.1",
        "nan_box": "prediction 0.coordinates.left: must be finite",
        "inf_point": "prediction 0.coordinates.y: must be finite",
        "inverted_box": "prediction 0.coordinates: box has right < left",
        "not_annotation": "AdapterContractError",
    }
    for item in items[1:-1]:
        failure = failure_of(report, item)
        assert failure.stage == "predict" and expected[item.metadata["result"]] in failure.error, failure
        assert local_registry.prediction_model_ids(item) == []
    for item in (items[0], items[-1]):
        raw = local_registry.store.get_bytes(layout.predictions(ds.id, item.id, model.id, model.version)).decode()
        assert "NaN" not in raw and "Infinity" not in raw
    one_set_each(local_registry, [items[0], items[-1]], model)


# --------------------------------------------------------------------------- records


def test_a_model_record_missing_fields_names_the_field_and_spoils_nothing_else(local_registry: Registry, tmp_path: Path) -> None:
    ds, items, model = dataset_with_model(local_registry, 2)
    other = local_registry.create_model("other")
    store = local_registry.store
    record = store.get_json(layout.model_record(model.id))
    store.put_json(layout.model_record(model.id), {k: v for k, v in record.items() if k != "name"})
    with pytest.raises(ValidationError) as info:
        local_registry.get_model(model.id)
    assert info.value.field == "name" and "missing required field" in str(info.value) and model.id in str(info.value)

    result = run_cli(["predict", model.id, "--dataset", ds.name, "--store", store.uri])
    assert result.returncode == 1
    assert "Model.name" in result.stderr and "missing required field" in result.stderr and "Traceback" not in result.stderr
    assert all(local_registry.prediction_model_ids(i) == [] for i in items)
    assert local_registry.get_model("other").id == other.id  # the other records are intact

    for broken, field, fragment in [
        (record | {"version": 2}, "artifacts", "manifest is version 1, model is 2"),
        (record | {"artifacts": None}, "artifacts", "version 1 has no manifest"),
        (record | {"artifacts": "weights.json"}, "artifacts", "expected an ArtifactManifest"),
        (record | {"colour": "red"}, "colour", "unknown field"),
        (record | {"status": "exploded"}, "status", "must be one of"),
    ]:
        store.put_json(layout.model_record(model.id), broken)
        with pytest.raises(ValidationError) as info:
            local_registry.get_model(model.id)
        assert info.value.field == field and fragment in str(info.value), str(info.value)


def test_adapter_results_of_the_wrong_number_or_type_fail_that_batch_only(local_registry: Registry) -> None:
    pairs = ["ok", "short", "long", "dict", "none", "strings", "raise", "ok"]
    modes = [({} if p == "ok" else {"batch": p}) for p in pairs for _ in range(2)]
    ds, items, model, adapter = scripted(local_registry, modes, batch_size=2)
    report = adapter.predict_dataset(ds)
    assert (report.succeeded, report.failed) == (4, 12), report.summary()
    expected = {
        "short": "AdapterContractError: predict returned 1 results for a batch of 2",
        "long": "AdapterContractError: predict returned 3 results for a batch of 2",
        "dict": "AdapterContractError: predict returned a dict, expected a list",
        "none": "AdapterContractError: predict returned a NoneType, expected a list",
        "strings": "AdapterContractError: predict result is a str",
        "raise": "RuntimeError: model exploded on purpose",
    }
    for item in items:
        mode = item.metadata.get("batch")
        if mode is None:
            assert local_registry.prediction_model_ids(item) == [model.id]
            continue
        failure = failure_of(report, item)
        assert failure.stage == "predict" and expected[mode] in failure.error, failure
        assert failure.path == item.path
    assert AdapterContractError.__name__ in report.summary()


def test_a_hanging_predict_times_out_per_batch_and_the_process_exits(local_registry: Registry) -> None:
    modes = [{}, {}, {"batch": "hang"}, {"batch": "hang"}, {}, {}]
    ds, items, model, _ = scripted(local_registry, modes, batch_size=2, configuration={"predict_timeout_s": 1})
    start = time.monotonic()
    result = run_cli(["predict", model.name, "--dataset", ds.name, "--store", local_registry.store.uri, "--report"], timeout=60)
    took = time.monotonic() - start
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 30, f"the process took {took:.0f}s to exit after a hung predict"
    report = report_json(result.stdout)
    assert (report["succeeded"], report["failed"]) == (4, 2)
    for failure in report["failures"]:
        assert failure["item_id"] in (items[2].id, items[3].id)
        assert failure["stage"] == "predict" and "TimeoutError: predict did not return within predict_timeout_s=1" in failure["error"]
    one_set_each(local_registry, items[:2] + items[4:], model)


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("no_such_module_xyz:Adapter", "cannot import module 'no_such_module_xyz'"),
        ("reliability_support:NoSuchAdapter", "module 'reliability_support' has no attribute 'NoSuchAdapter'"),
        ("reliability_support:png_bytes", "'reliability_support:png_bytes' is not a BaseModelAdapter subclass"),
        ("reliability_support.SlowAdapter", "expected 'package.module:Class', got 'reliability_support.SlowAdapter'"),
        ("broken_adapter_module:Adapter", "cannot import module 'broken_adapter_module'"),
    ],
)
def test_unknown_adapter_import_paths_are_named(path: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_adapter_class(path)
    assert info.value.field == "import_path" and fragment in str(info.value)


def test_cli_refuses_an_unknown_adapter_before_touching_the_store(local_registry: Registry) -> None:
    ds, items, model = dataset_with_model(local_registry, 2)
    uri = local_registry.store.uri
    before = keys(local_registry)
    create = run_cli(["model", "create", "--name", "ghost", "--adapter", "no_such_module_xyz:Adapter", "--store", uri])
    assert create.returncode == 1 and "cannot import module 'no_such_module_xyz'" in create.stderr, create.stderr
    predict = run_cli(["predict", model.name, "--adapter", "no_such_module_xyz:Adapter", "--dataset", ds.name, "--store", uri])
    assert predict.returncode == 1 and "no_such_module_xyz" in predict.stderr, predict.stderr
    assert "Traceback" not in create.stderr + predict.stderr
    assert keys(local_registry) == before


@pytest.mark.s3
def test_a_missing_bucket_is_named_at_once(s3_env: dict[str, str]) -> None:
    start = time.monotonic()
    result = run_cli(["dataset", "list", "--store", "s3://no-such-bucket-reliability/p"])
    assert result.returncode == 1
    assert "S3 bucket 'no-such-bucket-reliability' does not exist" in result.stderr, result.stderr
    assert time.monotonic() - start < 20, "a missing bucket is not a transient error: no retrying"
    for uri, fragment in [("s3:///prefix", "names no bucket"), ("s3://", "names no bucket")]:
        with pytest.raises(StoreError, match=fragment):
            open_store(uri)


@pytest.mark.s3
def test_wrong_credentials_are_reported_without_the_secret(s3_env: dict[str, str], s3_store_uri: str) -> None:
    secret = "WRONG-secret-Zq8xR2vL9mN4"
    result = run_cli(["dataset", "list", "--store", s3_store_uri], env=subprocess_env({"AWS_SECRET_ACCESS_KEY": secret}))
    assert result.returncode == 1
    assert "S3 credentials were rejected" in result.stderr and "AWS_SECRET_ACCESS_KEY" in result.stderr, result.stderr
    assert secret not in result.stdout + result.stderr
    assert s3_env["AWS_ACCESS_KEY_ID"] not in result.stdout + result.stderr
