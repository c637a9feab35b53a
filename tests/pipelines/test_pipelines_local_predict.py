"""The batched prediction DAG end to end under ``kfp.local``: 3 shards, one corrupt item."""

from __future__ import annotations

import builtins
import logging
import time

import pytest

from adapter_base import Registry, ValidationError
from adapter_base.cli.main import main
from adapter_base.registry import layout
from kfp_backend import assert_strict_json_files
from pipelines.kfp.local import PipelineRunError, preserved_process_state, run_local
from pipelines_support import ADAPTER, MODEL, make_digits, predict_arguments

pytestmark = [pytest.mark.kfp_local, pytest.mark.slow]


def test_predict_dag_predicts_every_item_once_and_reports_the_corrupt_one(store_uri, pipeline_root, record_property):
    digits = make_digits(store_uri, epochs=3, corrupt=True, train=True)
    start = time.monotonic()
    result = run_local("predict", predict_arguments(store_uri, num_shards=3), pipeline_root=pipeline_root)
    record_property("predict_dag_seconds", round(time.monotonic() - start, 2))
    s = result.summary

    assert s["shards"] == 3 and len(s["per_shard"]) == 3, "every shard ran, the corrupt item failed none of them"
    assert all(p["total"] in (133, 134) for p in s["per_shard"])
    assert (s["total"], s["succeeded"], s["failed"]) == (401, 400, 1)
    (failure,) = s["failures"]
    assert failure["item_id"] == digits.corrupt_item_id and failure["stage"] == "prepare"
    assert "cannot decode image" in failure["error"] and failure["path"] == "test/corrupt.png"
    assert s["failures_by_stage"] == {"prepare": 1} and s["ok"] is False
    assert s["items_per_second"] > 0 and s["model_versions"] == [1] and s["model_ids"] == [digits.model_id]

    with Registry.open(store_uri) as registry:
        model = registry.get_model(MODEL)
        run_id = s["run_id"]
        assert registry.store.get_json(layout.prediction_summary(run_id))["succeeded"] == 400
        assert all(registry.store.exists(layout.shard_report(run_id, i)) for i in range(3))
        items = list(registry.iter_items(digits.dataset_id))
        assert len(items) == 401
        for item in items:
            ids = registry.prediction_model_ids(item)
            if item.id == digits.corrupt_item_id:
                assert ids == []
                continue
            assert ids == [model.id], f"item {item.id} has prediction sets from {ids}"
            pset = registry.get_predictions(item, model.id)
            assert pset.model_version == 1 and len(pset.annotations) == 1
            assert pset.run_id.startswith(f"{run_id}-shard-")


def test_predict_dag_with_filters_and_more_shards_than_items(local_store_uri, pipeline_root):
    digits = make_digits(local_store_uri, limit=60, epochs=1, train=True)
    root = logging.getLogger()
    before = (root.handlers[:], root.level, builtins.print)
    result = run_local("predict", predict_arguments(local_store_uri, num_shards=50, filters={"subset": "test"}), pipeline_root=pipeline_root)
    s = result.summary
    with Registry.open(local_store_uri) as registry:
        test_items = list(registry.iter_items(digits.dataset_id, {"subset": "test"}))
        others = [i for i in registry.iter_items(digits.dataset_id) if "test" not in i.subsets]
        assert s["total"] == s["succeeded"] == len(test_items) == s["shards"], "one item per shard when there are fewer items than shards"
        assert all(registry.prediction_model_ids(i) == [digits.model_id] for i in test_items)
        assert all(registry.prediction_model_ids(i) == [] for i in others)
    assert (root.handlers, root.level, builtins.print) == before, "kfp.local's parallel shards leave no logging/print state behind"
    written = assert_strict_json_files(pipeline_root)
    assert sum(p.name == "executor_output.json" for p in written) == len(test_items) + 3, "every shard, load, split and merge"


def test_preserved_process_state_undoes_what_kfp_local_swaps():
    root = logging.getLogger()
    before = (root.handlers[:], root.level, builtins.print)
    with preserved_process_state():
        # What two overlapping kfp.local tasks can leave behind: their handler, their level, their print.
        root.handlers.clear()
        root.addHandler(logging.StreamHandler())
        root.setLevel(logging.INFO if root.level != logging.INFO else logging.ERROR)
        builtins.print = lambda *a, **k: None
    assert (root.handlers, root.level, builtins.print) == before


def test_cli_pipeline_run_predict_local_exits_1_when_an_item_failed(local_store_uri, tmp_path, capsys):
    make_digits(local_store_uri, limit=30, epochs=1, corrupt=True, train=True)
    argv = ["pipeline", "run", "predict", "--local", "--store", local_store_uri, "--adapter", ADAPTER, "--model", MODEL,
            "--dataset", "digits", "--shards", "3", "--pipeline-root", str(tmp_path / "root")]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "30 predicted, 1 failed of 31 in 3 shard(s)" in out and "prepare" in out


def test_a_predict_run_that_cannot_load_the_adapter_fails_fast_and_leaves_the_model_status_alone(local_store_uri, pipeline_root):
    make_digits(local_store_uri, limit=20, epochs=1, train=True)
    # Refused by the checks before kfp.local starts: no step runs.
    with pytest.raises(ValidationError, match="has no attribute 'Missing'"):
        run_local("predict", predict_arguments(local_store_uri, adapter="examples.digits.adapter:Missing"), pipeline_root=pipeline_root)
    with Registry.open(local_store_uri) as registry:
        model = registry.get_model(MODEL)
        assert model.status == "trained" and model.version == 1
        assert not [o.key for o in registry.store.list("runs/") if o.key.endswith(".report.json")], "no shard ran"


def test_predict_dag_with_an_alias_predicts_with_that_version_in_every_shard(local_store_uri, pipeline_root):
    digits = make_digits(local_store_uri, limit=60, epochs=1, train=True)
    with Registry.open(local_store_uri) as registry:
        from examples.digits.adapter import DigitsAdapter

        registry.set_alias(registry.get_model(MODEL), "production", 1)
        DigitsAdapter(registry=registry).train_model(MODEL)  # version 2, not promoted
        assert registry.get_model(MODEL).version == 2
    s = run_local("predict", predict_arguments(local_store_uri, alias="production"), pipeline_root=pipeline_root).summary
    assert s["model_versions"] == [1] and s["succeeded"] == s["total"] == 60
    with Registry.open(local_store_uri) as registry:
        assert {registry.get_predictions(i, digits.model_id).model_version for i in registry.iter_items(digits.dataset_id)} == {1}
    with pytest.raises(PipelineRunError, match="'load'"):
        run_local("predict", predict_arguments(local_store_uri, alias="staging"), pipeline_root=pipeline_root)
