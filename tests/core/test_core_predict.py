"""``predict_items`` / ``predict_dataset``: stamping, batching, per-item failures, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from adapter_base import Item, StoreError, ValidationError
from adapter_base.registry import layout
from core_support import BRIGHT, DARK, BrightnessAdapter, MetadataAdapter, brightness_dataset, instrument, png_bytes

CORE_DIR = Path(__file__).resolve().parent
REPO = CORE_DIR.parents[1]


def strict_json(text):
    def no_constant(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constant)


def metadata_dataset(registry, name, metas, *, mimetype="image/png"):
    ds = registry.create_dataset(name)
    items = [registry.add_item(ds, f"{i:03d}.png", png_bytes(i), mimetype=mimetype, metadata=meta) for i, meta in enumerate(metas)]
    return ds, items


def loaded(registry, model, cls=MetadataAdapter, **kwargs):
    adapter = cls(registry=registry, **kwargs)
    adapter.load_from_model(model)
    return adapter


def assert_failed(report, item, stage, *fragments):
    failures = [f for f in report.failures if f.item_id == item.id]
    assert len(failures) == 1, report.summary()
    failure = failures[0]
    assert failure.stage == stage, failure
    assert failure.path == item.path
    for fragment in fragments:
        assert fragment in failure.error, failure.error
    return failure


# --------------------------------------------------------------------------- the happy path


def test_every_item_gets_one_stamped_prediction_set(registry):
    ds = brightness_dataset(registry, sizes={"test": 7})
    model = registry.create_model("shade")
    adapter = loaded(registry, model, BrightnessAdapter)
    adapter.save_to_model()  # version 1
    items = list(registry.iter_items(ds))
    report = adapter.predict_items(items, batch_size=3)
    assert report.ok and report.total == 7 and report.succeeded == 7 and report.failed == 0
    assert (report.model_id, report.model_name, report.model_version) == (model.id, "shade", 1)
    assert sorted(adapter.batch_sizes) == [1, 3, 3]
    # predict gets the Item records of its batch as context
    seen = [it.id for call in adapter.calls["predict"] for it in call["items"]]
    assert sorted(seen) == sorted(it.id for it in items)
    assert all(isinstance(it, Item) for call in adapter.calls["predict"] for it in call["items"])
    for item in items:
        assert registry.prediction_model_ids(item) == [model.id]
        pset = registry.get_predictions(item, model.id)
        assert (pset.item_id, pset.model_id, pset.model_name, pset.model_version) == (item.id, model.id, "shade", 1)
        assert pset.run_id == report.run_id
        [ann] = pset.annotations
        assert ann.label == item.metadata["label"]
        assert (ann.model.model_id, ann.model.model_name, ann.model.model_version, ann.confidence) == (model.id, "shade", 1, 0.9)
        assert [a.label for a in registry.get_ground_truth(item)] == [item.metadata["label"]]  # ground truth untouched
    stored = strict_json(registry.store.get_bytes(layout.run_prefix(report.run_id) + "prediction-report.json"))
    assert stored["succeeded"] == 7 and stored["failed"] == 0 and stored["model_id"] == model.id


def test_rerun_replaces_the_models_predictions(local_registry):
    ds = brightness_dataset(local_registry, sizes={"test": 4})
    model = local_registry.create_model("flip")
    other = local_registry.create_model("other")
    adapter = loaded(local_registry, model, BrightnessAdapter)
    first = adapter.predict_dataset(ds)
    loaded(local_registry, other, BrightnessAdapter).predict_dataset(ds)
    adapter.model = {"threshold": 1000.0}  # now everything is dark
    second = adapter.predict_dataset(ds)
    assert first.run_id != second.run_id and second.succeeded == 4
    for item in local_registry.iter_items(ds):
        pset = local_registry.get_predictions(item, model.id)
        assert [a.label for a in pset.annotations] == [DARK] and pset.run_id == second.run_id
        assert sorted(local_registry.prediction_model_ids(item)) == sorted([model.id, other.id])
        assert [a.label for a in local_registry.get_predictions(item, other.id).annotations] == [item.metadata["label"]]


def test_unstamped_annotations_get_confidence_one_and_empty_results_are_stored(local_registry):
    ds, items = metadata_dataset(local_registry, "conf", [{}, {"boxes": [{"box": [0, 0, 2, 2], "label": "x", "confidence": 0.3}]}])
    model = local_registry.create_model("m")

    class GroundTruthStyle(MetadataAdapter):
        def predict(self, batch, **kwargs):
            from adapter_base import Annotation

            out = super().predict(batch, **kwargs)
            out[0] = [Annotation.classification("plain")]  # a list of annotations without model info
            return out

    report = loaded(local_registry, model, GroundTruthStyle).predict_items(items, batch_size=2)
    assert report.ok
    [plain] = local_registry.get_predictions(items[0], model.id).annotations
    assert plain.confidence == 1.0 and plain.model.model_id == model.id
    [box] = local_registry.get_predictions(items[1], model.id).annotations
    assert box.confidence == 0.3 and box.type == "box"


def test_batch_size_from_configuration_and_validation(local_registry):
    ds, items = metadata_dataset(local_registry, "bs", [{"pred": "a"}] * 5)
    model = local_registry.create_model("m", configuration={"batch_size": 2})
    adapter = loaded(local_registry, model)
    report = adapter.predict_dataset(ds)
    assert report.batch_size == 2 and sorted(adapter.batch_sizes) == [1, 2, 2]
    adapter.batch_sizes.clear()
    assert adapter.predict_items(items, batch_size=5).ok and adapter.batch_sizes == [5]
    with pytest.raises(ValidationError, match="batch_size"):
        adapter.predict_items(items, batch_size=-1)


# --------------------------------------------------------------------------- failures


def test_bad_items_are_reported_and_the_others_succeed(local_registry):
    ds = local_registry.create_dataset("bad")
    good = [local_registry.add_item(ds, f"good{i}.png", png_bytes(10 * i), metadata={"pred": "ok"}) for i in range(4)]
    corrupt = local_registry.add_item(ds, "corrupt.png", b"\x89PNG\r\n\x1a\n this is not a png", metadata={"pred": "x"})
    empty = local_registry.add_item(ds, "empty.png", b"", metadata={"pred": "x"})
    binary = local_registry.add_item(ds, "blob.bin", b"\x00\x01", mimetype="application/octet-stream", metadata={"pred": "x"})
    short = local_registry.add_item(ds, "short.png", png_bytes(1), metadata={"pred": "x", "short": True})
    raising = local_registry.add_item(ds, "raise.png", png_bytes(2), metadata={"pred": "x", "raise": True})
    not_a_list = local_registry.add_item(ds, "dict.png", png_bytes(3), metadata={"pred": "x", "not_a_list": True})
    strings = local_registry.add_item(ds, "str.png", png_bytes(4), metadata={"pred": "x", "strings": True})
    too_sure = local_registry.add_item(ds, "conf.png", png_bytes(5), metadata={"pred": "x", "confidence": 1.5})
    nan_conf = local_registry.add_item(ds, "nan.png", png_bytes(6), metadata={"pred": "x", "confidence": "nan"})
    model = local_registry.create_model("m")
    report = loaded(local_registry, model).predict_dataset(ds, batch_size=1)

    assert report.total == 13 and report.succeeded == 4 and report.failed == 9 and not report.ok
    assert_failed(report, corrupt, "prepare", "cannot decode image", corrupt.id)
    assert_failed(report, empty, "prepare", "empty file")
    assert_failed(report, binary, "prepare", "application/octet-stream")
    assert_failed(report, short, "predict", "AdapterContractError", "0 results for a batch of 1")
    assert_failed(report, raising, "predict", "RuntimeError: model exploded on purpose")
    assert_failed(report, not_a_list, "predict", "AdapterContractError", "dict")
    assert_failed(report, strings, "predict", "AdapterContractError", "str")
    assert_failed(report, too_sure, "predict", "confidence", "1.5")
    assert_failed(report, nan_conf, "predict", "confidence", "finite")
    for item in good:
        assert local_registry.get_predictions(item, model.id) is not None
    for item in (corrupt, empty, binary, short, raising, not_a_list, strings, too_sure, nan_conf):
        assert local_registry.get_predictions(item, model.id) is None
    summary = report.summary()
    assert f"FAILED {raising.id} (raise.png) at predict" in summary
    stored = strict_json(local_registry.store.get_bytes(layout.run_prefix(report.run_id) + "prediction-report.json"))
    assert {f["item_id"]: f["stage"] for f in stored["failures"]}[corrupt.id] == "prepare"
    assert stored["failed"] == 9


def test_a_failing_batch_fails_only_its_items(local_registry):
    metas = [{"pred": "a"}] * 3 + [{"pred": "a", "raise": True}] + [{"pred": "a"}] * 2
    ds, items = metadata_dataset(local_registry, "batches", metas)
    model = local_registry.create_model("m")
    report = loaded(local_registry, model).predict_items(items, batch_size=2)
    # the failing call is split until the item that raises is found: only that item fails
    assert report.succeeded == 5 and report.failed == 1
    assert [f.item_id for f in report.failures] == [items[3].id]
    assert all(f.stage == "predict" and "model exploded on purpose" in f.error for f in report.failures)


def test_prepare_item_func_returning_none_is_a_contract_error(local_registry):
    ds, items = metadata_dataset(local_registry, "none", [{"pred": "a"}, {"pred": "a", "none": True}])
    model = local_registry.create_model("m")

    class NoneForSome(MetadataAdapter):
        def prepare_item_func(self, item):
            return None if item.metadata.get("none") else super().prepare_item_func(item)

    report = loaded(local_registry, model, NoneForSome).predict_items(items)
    assert report.succeeded == 1
    assert_failed(report, items[1], "prepare", "AdapterContractError", "None")


def test_non_items_in_the_input_are_reported(local_registry):
    ds, items = metadata_dataset(local_registry, "input", [{"pred": "a"}])
    model = local_registry.create_model("m")
    report = loaded(local_registry, model).predict_items([items[0], "not-an-item"])
    assert report.succeeded == 1 and report.failed == 1
    assert report.failures[0].stage == "input" and "not-an-item" in report.failures[0].item_id


def test_unreadable_record_is_reported_at_list_stage(local_registry):
    ds, items = metadata_dataset(local_registry, "list", [{"pred": "a"}] * 2)
    local_registry.store.put_bytes(layout.item_record(ds.id, "garbled"), b"{{{")
    model = local_registry.create_model("m")
    report = loaded(local_registry, model).predict_dataset(ds)
    assert report.succeeded == 2 and report.failed == 1
    assert report.failures[0].item_id == "garbled" and report.failures[0].stage == "list"


# --------------------------------------------------------------------------- batch size, timeout, resume


def test_adaptive_batch_size_halves_on_memory_error(local_registry):
    ds, items = metadata_dataset(local_registry, "oom", [{"pred": "a", "memory_over": 2}] * 10)
    model = local_registry.create_model("m")
    adapter = loaded(local_registry, model)
    report = adapter.predict_items(items, batch_size=8)
    assert report.ok and report.succeeded == 10
    assert report.batch_size == 8 and report.batch_size_used == 2
    assert adapter.batch_sizes[:3] == [8, 4, 2]
    assert all(size <= 2 for size in adapter.batch_sizes[2:])
    assert sum(adapter.batch_sizes[2:]) == 10
    stored = strict_json(local_registry.store.get_bytes(layout.run_prefix(report.run_id) + "prediction-report.json"))
    assert stored["batch_size_used"] == 2


def test_memory_error_without_adaptive_batch_size_fails_the_batch(local_registry):
    ds, items = metadata_dataset(local_registry, "oom2", [{"pred": "a", "memory_over": 2}] * 4)
    model = local_registry.create_model("m", configuration={"adaptive_batch_size": False})
    report = loaded(local_registry, model).predict_items(items, batch_size=4)
    assert report.succeeded == 0 and report.failed == 4
    assert all("MemoryError" in f.error for f in report.failures)


def test_predict_timeout_fails_the_hanging_batch_and_goes_on(local_registry):
    metas = [{"pred": "a"}, {"pred": "a", "hang": True}, {"pred": "a"}, {"pred": "a"}]
    ds, items = metadata_dataset(local_registry, "hang", metas)
    model = local_registry.create_model("m", configuration={"predict_timeout_s": 1.0})
    adapter = loaded(local_registry, model)
    try:
        start = time.monotonic()
        report = adapter.predict_items(items, batch_size=1)
        elapsed = time.monotonic() - start
    finally:
        adapter.release.set()
    assert elapsed < 10
    assert report.succeeded == 3 and report.failed == 1
    assert_failed(report, items[1], "predict", "TimeoutError", "predict_timeout_s")


@pytest.mark.slow
def test_process_exits_after_a_predict_timeout(tmp_path):
    """A hung ``predict`` abandoned after ``predict_timeout_s`` must not keep the process
    (e.g. ``model-adapter predict`` in a pipeline step) from exiting."""
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path[:0] = [{str(CORE_DIR)!r}, {str(CORE_DIR.parent)!r}]  # core_support, and the shared tests/support
            from adapter_base import Registry
            from core_support import MetadataAdapter, png_bytes

            registry = Registry.open({str(tmp_path / "store")!r})
            ds = registry.create_dataset("d")
            items = [registry.add_item(ds, f"{{i}}.png", png_bytes(i), metadata={{"pred": "a", "hang": i == 1}}) for i in range(3)]
            model = registry.create_model("m", configuration={{"predict_timeout_s": 0.3}})
            adapter = MetadataAdapter(registry=registry)
            adapter.load_from_model(model)
            report = adapter.predict_items(items, batch_size=1)
            print("DONE", report.succeeded, report.failed, flush=True)
            registry.close()
            sys.exit(0 if report.ok else 1)
            """
        )
    )
    env = {**os.environ, "MODEL_ADAPTER_HOME": str(tmp_path / "home")}
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=12)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"process still running {time.monotonic() - start:.0f}s after predict timed out; output: {exc.stdout!r}")
    assert "DONE 2 1" in proc.stdout, proc.stderr
    assert proc.returncode == 1


def test_resume_skips_items_already_predicted_by_this_version(local_registry):
    ds, items = metadata_dataset(local_registry, "resume", [{"pred": "a"}] * 6)
    model = local_registry.create_model("m")
    adapter = loaded(local_registry, model)
    adapter.save_to_model()
    first = adapter.predict_items(items[:3])
    assert first.succeeded == 3
    adapter.seen_items.clear()
    report = adapter.predict_dataset(ds, resume=True)
    assert report.skipped == 3 and report.succeeded == 3 and report.total == 6 and report.ok
    assert sorted(i for batch in adapter.seen_items for i in batch) == sorted(it.id for it in items[3:])
    for item in items[:3]:
        assert local_registry.get_predictions(item, model.id).run_id == first.run_id  # untouched

    adapter.seen_items.clear()
    assert adapter.predict_dataset(ds, resume=True).skipped == 6 and adapter.seen_items == []

    adapter.save_to_model()  # a new version: earlier predictions are stale, nothing is skipped
    adapter.seen_items.clear()
    report = adapter.predict_dataset(ds, resume=True)
    assert report.skipped == 0 and report.succeeded == 6


def test_predict_dataset_with_filters_on_both_backends(registry):
    ds = brightness_dataset(registry, sizes={"train": 4, "test": 3})
    model = registry.create_model("shade")
    adapter = loaded(registry, model, BrightnessAdapter)
    report = adapter.predict_dataset(ds.name, filters={"subset": "test"})
    assert report.ok and report.total == 3
    for item in registry.iter_items(ds):
        has = registry.get_predictions(item, model.id) is not None
        assert has == ("test" in item.subsets)
        if has:
            assert registry.get_predictions(item, model.id).annotations[0].label in (BRIGHT, DARK)


def test_predict_without_a_loaded_model_is_an_error(local_registry):
    with pytest.raises(ValueError, match="load_from_model"):
        MetadataAdapter(registry=local_registry).predict_items([])


def test_write_failure_is_reported_per_item(registry):
    ds, items = metadata_dataset(registry, "write", [{"pred": "a"}] * 4)
    model = registry.create_model("m")
    doomed = layout.predictions(ds.id, items[2].id, model.id, model.version)

    def put_bytes(base, self, key, data, content_type=None):
        if key == doomed:
            raise StoreError("injected write failure")
        return base.put_bytes(self, key, data, content_type)

    instrument(registry.store, put_bytes=put_bytes)
    report = loaded(registry, model).predict_items(items, batch_size=2)
    assert report.succeeded == 3 and report.failed == 1
    assert_failed(report, items[2], "write", "injected write failure")
    assert registry.get_predictions(items[2], model.id) is None
    assert all(registry.get_predictions(it, model.id) is not None for i, it in enumerate(items) if i != 2)


def test_input_items_are_consumed_as_a_stream(local_registry):
    ds, items = metadata_dataset(local_registry, "stream", [{"pred": "a"}] * 3)
    model = local_registry.create_model("m", configuration={"prefetch_batches": 1})
    consumed = []

    def endless_ish():
        for i in range(200):
            consumed.append(i)
            yield items[i % 3]

    class Watching(MetadataAdapter):
        def predict(self, batch, **kwargs):
            self.consumed_at_first_call = getattr(self, "consumed_at_first_call", len(consumed))
            return super().predict(batch, **kwargs)

    adapter = loaded(local_registry, model, Watching)
    report = adapter.predict_items(endless_ish(), batch_size=2)
    assert report.succeeded == 200
    assert adapter.consumed_at_first_call <= 12, "the whole input was read before predicting"


def test_prediction_failures_are_redacted(local_registry, monkeypatch):
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    ds, items = metadata_dataset(local_registry, "secret", [{"pred": "a"}, {"pred": "a", "raise": True}])
    model = local_registry.create_model("m")

    class Leaky(MetadataAdapter):
        def predict(self, batch, **kwargs):
            if any(it.metadata.get("raise") for it in kwargs["items"]):
                raise ConnectionError(f"https://user:{secret}@bucket.example/ unreachable")
            return super().predict(batch, **kwargs)

    report = loaded(local_registry, model, Leaky).predict_items(items, batch_size=1)
    assert report.failed == 1 and "ConnectionError" in report.failures[0].error
    assert secret not in report.summary()
    assert secret not in local_registry.store.get_bytes(layout.run_prefix(report.run_id) + "prediction-report.json").decode()
