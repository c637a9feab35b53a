"""The framework's own process is SIGKILLed mid-run (a preempted pod), then run again.

Prediction resumes from the per-item completion records in the store (one
``PredictionSet`` per item and model); training resumes from the checkpoints mirrored
to the store at each epoch end. Both against the session's real S3 server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter_base import Registry
from adapter_base.registry import layout
from adapter_base.registry.checkpoints import checkpoint_key, stored_checkpoints
from adapter_base.storage import ObjectStore
from reliability_support import (
    count_sets,
    dataset_with_model,
    existing_sets,
    one_set_each,
    report_json,
    run_cli,
    sigkill,
    start_cli,
    wait_for,
)

pytestmark = [pytest.mark.reliability, pytest.mark.s3, pytest.mark.slow]


def test_killed_prediction_process_resumes_without_redoing_items(s3_registry: Registry, tmp_path: Path) -> None:
    ds, items, model = dataset_with_model(s3_registry, 40, configuration={"batch_size": 2, "delay_s": 0.15})
    args = ["predict", model.name, "--dataset", ds.name, "--store", s3_registry.store.uri, "--report"]
    proc = start_cli(args, log=tmp_path / "killed.log")
    try:
        wait_for(lambda: count_sets(s3_registry.store, ds.id, model.id) >= 8 or proc.poll() is not None, 60, "8 prediction sets")
        assert proc.poll() is None, "the run ended before it could be killed: " + (tmp_path / "killed.log").read_text()
    finally:
        sigkill(proc)
    assert proc.returncode == -9

    before = existing_sets(s3_registry, items, model)  # the per-item completion records
    assert 8 <= len(before) < 40
    assert not s3_registry.store.exists(layout.run_prefix(next(iter(before.values())).run_id) + "prediction-report.json")

    rerun = run_cli(args + ["--resume"])
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    report = report_json(rerun.stdout)
    assert (report["skipped"], report["succeeded"], report["failed"], report["total"]) == (len(before), 40 - len(before), 0, 40)
    after = one_set_each(s3_registry, items, model)
    for item_id, pset in before.items():
        assert (after[item_id].run_id, after[item_id].created_at) == (pset.run_id, pset.created_at), "a finished item was predicted again"
    assert {after[i.id].run_id for i in items if i.id not in before} == {report["run_id"]}

    again = run_cli(args + ["--resume"])  # a third run has nothing left to do
    assert again.returncode == 0 and report_json(again.stdout)["skipped"] == 40
    assert one_set_each(s3_registry, items, model) == after


def test_killed_training_process_keeps_checkpoints_and_the_rerun_resumes(s3_registry: Registry, tmp_path: Path) -> None:
    _, _, model = dataset_with_model(s3_registry, 2, train=4, configuration={"epochs": 6, "epoch_delay_s": 0.4})
    store = s3_registry.store
    ckpt = layout.checkpoints_prefix(model.id)
    args = ["train", model.name, "--store", store.uri]
    proc = start_cli(args, log=tmp_path / "killed.log")
    try:
        wait_for(lambda: _published(store, model.id) >= {"epoch-1.json"} or proc.poll() is not None, 60, "the checkpoints of epoch 1")
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()
    finally:
        sigkill(proc)

    killed = s3_registry.get_model(model.id)
    assert killed.version == 1 and killed.artifacts == model.artifacts, "a killed training run changed the current version"
    assert killed.status == "training"  # nobody could record the kill (the pipeline's exit step does)
    kept = stored_checkpoints(store, model.id)
    assert kept is not None and {"epoch-0.json", "epoch-1.json", "state.json"} <= {f.path for f in kept.files}
    resumed_at = store.get_json(checkpoint_key(kept, "state.json"))["epoch"] + 1  # the set is whole: state.json of its epoch

    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    trained = s3_registry.get_model(model.id)
    assert trained.status == "trained" and trained.version == 2
    assert trained.metrics["training"]["resumed_from"] == resumed_at >= 2  # train() got the stored checkpoint
    assert trained.metrics["training"]["epoch"] == 5
    assert not list(store.list(ckpt)), "checkpoints are removed once a run succeeds"


def _published(store: ObjectStore, model_id: str) -> set[str]:
    """The paths of the model's published checkpoint set (empty before the first)."""
    kept = stored_checkpoints(store, model_id)
    return {f.path for f in kept.files} if kept else set()
