"""A retried prediction shard resumes: it skips the items its run already predicted, whatever ``resume`` says.

A preempted pod is killed without warning; KFP's retry policy (Argo ``retryStrategy``
without a ``retryPolicy``, i.e. ``OnFailure``: ``backend/src/v2/compiler/argocompiler/
container.go``) retries a failed pod but may not retry a deleted one, and a user may
retry the whole run (same run id). Either way the next attempt of the shard must not
redo the items the killed one finished, nor keep another run's predictions for the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter_base import Registry
from adapter_base.steps.load import load
from adapter_base.steps.predict_shard import predict_shard
from adapter_base.steps.split_dataset import split_dataset
from adapter_base.registry import layout
from adapter_base.sharding import shard_run_id, start_shard_attempt
from adapter_base.steps.model_ref import ModelRef
from adapter_base.storage import open_store
from kfp_backend import CompiledPipeline, artifact
from pipelines.kfp.build import compile_pipeline
from pipelines_support import ADAPTER, DATASET, MODEL, make_digits
from preemptible_adapter import PREEMPT_ENV

RUN_ID = "0b7e9a52-1c3d-4e5f-8a9b-c0d1e2f3a4b5"
PREEMPTIBLE = "preemptible_adapter:PreemptedDigitsAdapter"
ITEMS = 60
BATCH = 4


def test_attempts_are_counted_before_any_work_and_an_unreadable_counter_means_a_retry(local_store_uri):
    store = open_store(local_store_uri)
    assert [start_shard_attempt(store, "r1", 0) for _ in range(3)] == [1, 2, 3]
    assert start_shard_attempt(store, "r1", 1) == 1, "each shard counts its own attempts"
    store.put_bytes(layout.shard_attempts("r2", 0), b"{truncated")
    assert start_shard_attempt(store, "r2", 0) == 2


def predict_input(store_uri: str, pod: Path, ref: ModelRef, index: dict, *, resume: bool) -> dict:
    """The executor input of shard 0's ``predict-shard`` task, its artifacts as local files."""
    pod.mkdir(parents=True, exist_ok=True)
    (pod / "base_model").write_text(json.dumps(ref.to_dict()))
    (pod / "shards").write_text(json.dumps(index))
    return {
        "inputs": {
            "parameterValues": {
                "adapter": PREEMPTIBLE,
                "shard": 0,
                "store_uri": store_uri,
                "configuration": {},
                "batch_size": BATCH,
                "resume": resume,
            },
            "artifacts": {
                "base_model": artifact(pod / "base_model", "system.Model", ref.to_dict()),
                "shards": artifact(pod / "shards", "system.Dataset"),
            },
        },
        "outputs": {
            "artifacts": {
                "report": artifact(pod / "report", "system.Dataset"),
                "metrics": artifact(pod / "metrics", "system.Metrics"),
            }
        },
    }


def sets_by_item(store_uri: str, dataset_id: str, model_id: str) -> dict[str, tuple[str | None, str]]:
    with Registry.open(store_uri) as registry:
        out = {}
        for item in registry.iter_items(dataset_id):
            pset = registry.get_predictions(item, model_id)
            if pset is not None:
                out[item.id] = (pset.run_id, pset.created_at)
        return out


@pytest.mark.slow
def test_a_preempted_shard_retried_without_resume_skips_only_what_its_run_did(local_store_uri, tmp_path):
    digits = make_digits(local_store_uri, limit=ITEMS, epochs=1, train=True)
    # An earlier run predicted every item with the same version: without --resume, this run must redo them.
    earlier = split_dataset(DATASET, 1, "earlier-run", store_uri=local_store_uri)
    ref = load(ADAPTER, MODEL, store_uri=local_store_uri, record_failures=False)
    predict_shard(ADAPTER, ref, earlier, 0, store_uri=local_store_uri)
    index = split_dataset(DATASET, 1, RUN_ID, store_uri=local_store_uri)
    shard_run = shard_run_id(RUN_ID, 0)

    yaml_path = compile_pipeline("predict", tmp_path / "predict.yaml", "model-adapter:test", "cpu")
    compiled = CompiledPipeline(yaml_path)
    home = {"MODEL_ADAPTER_HOME": str(tmp_path / "home")}

    first = compiled.run_step(
        "predict-shard", predict_input(local_store_uri, tmp_path / "pod-0", ref, index, resume=False), tmp_path / "pod-0",
        env={**home, PREEMPT_ENV: "3"},
    )
    assert first.returncode == 128 + 9, f"the first attempt was to be SIGKILLed (its sh reports 137):\n{first.log[-3000:]}"
    assert first.output is None, "a killed pod writes no outputs"
    after_kill = sets_by_item(local_store_uri, digits.dataset_id, digits.model_id)
    done = {item for item, (run, _) in after_kill.items() if run == shard_run}
    assert 0 < len(done) < ITEMS, f"the kill came partway through the shard ({len(done)} of {ITEMS} done)"

    second = compiled.run_step(
        "predict-shard", predict_input(local_store_uri, tmp_path / "pod-1", ref, index, resume=False), tmp_path / "pod-1", env=home
    )
    assert second.returncode == 0, second.log[-3000:]
    report = json.loads((tmp_path / "pod-1" / "report").read_text())
    assert report["attempt"] == 2 and report["total"] == ITEMS
    assert (report["skipped"], report["succeeded"], report["failed"]) == (len(done), ITEMS - len(done), 0)
    final = sets_by_item(local_store_uri, digits.dataset_id, digits.model_id)
    assert {run for run, _ in final.values()} == {shard_run}, "every item now has this run's prediction, none kept from the earlier run"
    assert all(final[item] == after_kill[item] for item in done), "the items the killed attempt finished were not predicted again"
    assert second.output["artifacts"]["report"]["artifacts"][0]["metadata"]["attempt"] == 2
