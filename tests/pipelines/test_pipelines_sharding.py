"""``adapter_base.sharding`` and the pure parts of ``adapter_base.pipeline_steps``."""

from __future__ import annotations

import pytest

from adapter_base import Registry, ValidationError
from adapter_base.errors import NotFoundError
from adapter_base.pipeline_steps import finalize_step, manifest_digest, metric_value, scalar_metrics, square_confusion
from adapter_base.sharding import (
    iter_shard_items,
    merge_reports,
    read_shard,
    shard_key,
    shard_report_key,
    split_evenly,
    summary_key,
    summary_markdown,
    write_shards,
)
from adapter_base.storage import LocalStore


# --- split -------------------------------------------------------------------------------


@pytest.mark.parametrize("n,shards", [(0, 3), (1, 3), (2, 3), (3, 3), (10, 3), (11, 4), (400, 3), (7, 1), (5, 10)])
def test_split_evenly_keeps_every_id_once_in_order_with_balanced_sizes(n, shards):
    ids = [f"id{i:04d}" for i in range(n)]
    parts = split_evenly(ids, shards)
    assert len(parts) == max(1, min(shards, n))
    assert [i for p in parts for i in p] == ids
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    if n:
        assert all(sizes)


@pytest.mark.parametrize("bad", [0, -1, 10_001, 2.0, True, "3"])
def test_split_evenly_rejects_a_bad_shard_count(bad):
    with pytest.raises(ValidationError, match="num_shards"):
        split_evenly(["a"], bad)


def test_write_and_read_shards_through_the_store(tmp_path):
    store = LocalStore(tmp_path / "store")
    ids = [f"item{i}" for i in range(10)]
    index = write_shards(store, "run-1", "ds1", ids, 3, filters={"subset": "test"})
    assert index["num_shards"] == 3 and index["total"] == 10 and index["filters"] == {"subset": "test"}
    assert [s["count"] for s in index["shards"]] == [4, 3, 3]
    assert "item0" not in str(index), "the index must stay small: keys and counts, no item ids"
    got = [read_shard(store, index, s["shard"]) for s in index["shards"]]
    assert [i for part in got for i in part] == ids
    assert store.exists(shard_key("run-1", 2))
    with pytest.raises(ValidationError, match="no shard 3"):
        read_shard(store, index, 3)


def test_keys_live_under_the_run():
    assert shard_key("r", 1) == "runs/r/shards/0001.json"
    assert shard_report_key("r", 12) == "runs/r/shards/0012.report.json"
    assert summary_key("r") == "runs/r/prediction-summary.json"


def test_write_shards_rejects_an_unsafe_run_id(tmp_path):
    with pytest.raises(ValidationError):
        write_shards(LocalStore(tmp_path / "s"), "../escape", "ds", ["a"], 1)


def test_iter_shard_items_yields_items_and_errors_in_order(tmp_path):
    with Registry.open(str(tmp_path / "store"), io_workers=2) as registry:
        ds = registry.create_dataset("d")
        a = registry.add_item(ds, "a.txt", b"a")
        b = registry.add_item(ds, "b.txt", b"b")
        out = list(iter_shard_items(registry, ds.id, [b.id, "missing-item", a.id]))
    assert [i for i, _ in out] == [b.id, "missing-item", a.id]
    assert out[0][1].path == "b.txt" and out[2][1].path == "a.txt"
    assert isinstance(out[1][1], NotFoundError)


# --- merge -------------------------------------------------------------------------------


def _report(shard, total, ok, failures=(), duration=2.0, version=3, fatal=None):
    return {
        "shard": shard,
        "run_id": f"r-shard-{shard:04d}",
        "model_id": "m1",
        "model_version": version,
        "total": total,
        "succeeded": ok,
        "skipped": total - ok - len(failures),
        "failures": [{"item_id": i, "stage": st, "error": e, "path": f"{i}.png"} for i, st, e in failures],
        "duration_s": duration,
        "fatal_error": fatal,
    }


def test_merge_reports_sums_counts_lists_failures_with_their_shard_and_computes_throughput():
    reports = [
        _report(2, 10, 10, duration=5.0),
        _report(0, 10, 8, [("x", "prepare", "ValidationError: cannot decode image"), ("y", "predict", "boom")], duration=4.0),
        _report(1, 10, 9, [("z", "write", "StoreError: 503")], duration=2.0),
    ]
    s = merge_reports(reports, run_id="r")
    assert (s["shards"], s["total"], s["succeeded"], s["failed"], s["skipped"]) == (3, 30, 27, 3, 0)
    assert [f["item_id"] for f in s["failures"]] == ["x", "y", "z"]
    assert [f["shard"] for f in s["failures"]] == [0, 0, 1]
    assert s["failures_by_stage"] == {"predict": 1, "prepare": 1, "write": 1}
    assert s["duration_s"] == 5.0 and s["shard_seconds"] == 11.0
    assert s["items_per_second"] == pytest.approx(27 / 5.0)
    assert [p["shard"] for p in s["per_shard"]] == [0, 1, 2]
    assert s["model_versions"] == [3] and s["model_ids"] == ["m1"]
    assert s["ok"] is False and s["fatal_errors"] == []


def test_merge_reports_of_clean_shards_is_ok_and_notes_fatal_errors_and_mixed_versions():
    assert merge_reports([_report(0, 5, 5), _report(1, 5, 5)])["ok"] is True
    s = merge_reports([_report(0, 5, 5, version=1), _report(1, 0, 0, version=2, fatal="StoreError: listing failed")])
    assert s["ok"] is False and s["fatal_errors"] == [{"shard": 1, "error": "StoreError: listing failed"}]
    assert s["model_versions"] == [1, 2]
    empty = merge_reports([])
    assert empty["total"] == 0 and empty["items_per_second"] == 0.0 and empty["ok"] is True


def test_summary_markdown_shows_counts_shards_and_each_failure():
    s = merge_reports([_report(0, 4, 3, [("bad|item", "prepare", "cannot decode\nimage")]), _report(1, 4, 4)], run_id="r9")
    md = summary_markdown(s)
    assert "Prediction run r9" in md and "| failed | 1 |" in md and "| predicted | 7 |" in md
    assert "bad\\|item" in md and "cannot decode image" in md and "prepare" in md
    assert md.count("\n| 0 |") + md.count("\n| 1 |") >= 2


# --- step helpers ------------------------------------------------------------------------

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


def test_square_confusion_adds_the_none_column_as_a_zero_row():
    categories, matrix = square_confusion(METRICS["confusion_matrix"])
    assert categories == ["a", "b", "<none>"]
    assert matrix == [[4, 1, 0], [1, 3, 1], [0, 0, 0]]


def test_manifest_digest_pins_the_file_list():
    from adapter_base import ArtifactManifest
    from adapter_base.entities.model import ArtifactFile

    f1, f2 = ArtifactFile(path="a", size=1, sha256="0" * 64), ArtifactFile(path="b", size=1, sha256="1" * 64)
    d = manifest_digest(ArtifactManifest(model_id="m", version=1, files=[f1, f2]))
    assert d.startswith("sha256:") and d == manifest_digest(ArtifactManifest(model_id="m", version=2, files=[f2, f1]))
    assert d != manifest_digest(ArtifactManifest(model_id="m", version=1, files=[f1]))
    assert manifest_digest(None) == ""


def test_finalize_step_records_failure_keeps_a_step_message_and_leaves_success_alone(tmp_path):
    uri = str(tmp_path / "store")
    with Registry.open(uri) as registry:
        model = registry.create_model("m")
    assert "left as it is" in finalize_step("m", "run1", "SUCCEEDED", store_uri=uri)
    with Registry.open(uri) as registry:
        assert registry.get_model("m").status == "created"

    finalize_step("m", "run1", "FAILED", "Task exit-handler-1 failed.", store_uri=uri)
    with Registry.open(uri) as registry:
        m = registry.get_model("m")
        assert m.status == "failed" and m.status_message.startswith("run run1: pipeline failed: Task exit-handler-1 failed.")
        registry.set_status(model, "failed", "run run2: train: ValueError: exact cause")
    finalize_step("m", "run2", "FAILED", "generic", store_uri=uri)
    with Registry.open(uri) as registry:
        assert registry.get_model("m").status_message == "run run2: train: ValueError: exact cause"
    finalize_step("m", "run3", "CANCELLED", None, store_uri=uri)
    with Registry.open(uri) as registry:
        assert registry.get_model("m").status_message.startswith("run run3: pipeline cancelled")
    assert "cannot record" in finalize_step("no-such-model", "run4", "FAILED", "x", store_uri=uri)
