"""``train`` raises in the middle: the model is marked failed with the error, the last good
version stays current, the checkpoints written so far are kept, and a rerun resumes from
them (the framework hands ``train`` the latest checkpoint as ``resume_checkpoint``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter_base import Registry
from adapter_base.registry import layout
from adapter_base.registry.checkpoints import checkpoint_key, stored_checkpoints
from reliability_support import (
    ENV_EPOCH_DELAY,
    ENV_FAIL_AT_EPOCH,
    ENV_FAIL_IN_SAVE,
    SlowAdapter,
    dataset_with_model,
    run_cli,
    sigkill,
    start_cli,
    subprocess_env,
    wait_for,
)

pytestmark = [pytest.mark.reliability, pytest.mark.s3]


def test_training_that_raises_is_marked_failed_and_the_rerun_resumes(s3_registry: Registry, tmp_path: Path) -> None:
    _, _, model = dataset_with_model(s3_registry, 2, train=4, configuration={"epochs": 4})
    store = s3_registry.store
    ckpt = layout.checkpoints_prefix(model.id)
    args = ["train", model.name, "--store", store.uri]

    failed_run = run_cli(args, env=subprocess_env({ENV_FAIL_AT_EPOCH: "2"}))
    assert failed_run.returncode == 1
    assert "injected training failure at epoch 2" in failed_run.stderr, failed_run.stderr
    assert "Traceback" not in failed_run.stderr

    failed = s3_registry.get_model(model.id)
    assert failed.status == "failed"
    assert failed.status_message == "RuntimeError: injected training failure at epoch 2"
    assert failed.version == 1 and failed.artifacts == model.artifacts, "the failed run changed the current version"
    manifest = s3_registry.download_artifacts(failed, tmp_path / "v1")  # still complete, digests verified
    assert [f.path for f in manifest.files] == ["weights.json"]
    assert not list(store.list(f"models/{model.id}/versions/000002/")), "the failed run left files of a next version"
    kept = stored_checkpoints(store, model.id)
    assert kept is not None and {f.path for f in kept.files} == {"epoch-0.json", "epoch-1.json", "state.json"}
    assert store.get_json(checkpoint_key(kept, "state.json"))["epoch"] == 1

    rerun = run_cli(args)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    trained = s3_registry.get_model(model.id)
    assert (trained.status, trained.status_message, trained.version) == ("trained", None, 2)
    assert trained.metrics["training"] == {"epoch": 3, "resumed_from": 2}  # epochs 2 and 3 only
    assert not list(store.list(ckpt))
    adapter = SlowAdapter(registry=s3_registry)
    adapter.load_from_model(trained, local_path=str(tmp_path / "v2"))
    assert adapter.model == {"threshold": 120.0, "epochs_done": 4}


def test_in_process_training_failure_keeps_the_previous_version_loadable(s3_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same through the Python API: the error propagates unchanged, predictions go on with v1."""
    ds, items, model = dataset_with_model(s3_registry, 4, train=4, configuration={"epochs": 3})
    monkeypatch.setenv(ENV_FAIL_AT_EPOCH, "1")
    adapter = SlowAdapter(registry=s3_registry)
    with pytest.raises(RuntimeError, match="injected training failure at epoch 1"):
        adapter.train_model(model)
    current = s3_registry.get_model(model.id)
    assert current.status == "failed" and current.version == 1
    fresh = SlowAdapter(registry=s3_registry)
    fresh.load_from_model(current)
    report = fresh.predict_items(items)
    assert report.ok and report.succeeded == 4
    assert {s3_registry.get_predictions(i, model.id).model_version for i in items} == {1}


def test_a_failure_while_saving_the_trained_model_publishes_nothing(s3_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training succeeds, ``save`` raises half-way: no new version, failed status, checkpoints kept."""
    _, _, model = dataset_with_model(s3_registry, 2, train=4, configuration={"epochs": 2})
    monkeypatch.setenv(ENV_FAIL_IN_SAVE, "1")
    with pytest.raises(OSError, match="injected failure while saving"):
        SlowAdapter(registry=s3_registry).train_model(model)
    current = s3_registry.get_model(model.id)
    assert (current.status, current.version, current.artifacts) == ("failed", 1, model.artifacts)
    assert "OSError: injected failure while saving" in current.status_message
    assert not s3_registry.store.exists(layout.manifest(model.id, 2))
    kept = stored_checkpoints(s3_registry.store, model.id)
    assert kept is not None and "state.json" in {f.path for f in kept.files}
    s3_registry.download_artifacts(current, tmp_path / "v1")
    monkeypatch.delenv(ENV_FAIL_IN_SAVE)
    trained = SlowAdapter(registry=s3_registry).train_model(model.id)
    assert (trained.status, trained.version) == ("trained", 2)
    assert trained.metrics["training"] == {}  # resumed after the last epoch: nothing left to train


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local_registry", "s3_registry"], ids=["local", "seaweedfs"])
def test_overlapping_training_runs_commit_once_and_the_overtaken_one_is_refused(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A cron tick while the previous run still trains: both train from version 1; the quick one
    commits version 2, the slow one is refused (one line naming both versions) and leaves the
    model at version 2, ``trained``, with no version 3."""
    registry: Registry = request.getfixturevalue(backend)
    _, _, model = dataset_with_model(registry, 2, train=4, configuration={"epochs": 3})
    args = ["train", model.name, "--store", registry.store.uri]
    slow = start_cli(args, env=subprocess_env({ENV_EPOCH_DELAY: "3"}), log=tmp_path / "slow.log")
    try:
        wait_for(lambda: registry.get_model(model.id).status == "training", 60, "the slow run to start training")
        quick = run_cli(args)
        assert quick.returncode == 0, quick.stdout + quick.stderr
        assert registry.get_model(model.id).version == 2
        assert slow.wait(120) == 1
    finally:
        if slow.poll() is None:
            sigkill(slow)
    errors = [line for line in (tmp_path / "slow.log").read_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "VersionConflictError" in errors[0], errors
    assert "at version 2, not at version 1" in errors[0], errors[0]
    current = registry.get_model(model.id)
    assert (current.version, current.status, current.status_message) == (2, "trained", None)
    assert not registry.store.exists(layout.manifest(model.id, 3)), "the refused run left a version behind"
    assert not list(registry.store.list(layout.model_prefix(model.id) + "claims/"))
    assert stored_checkpoints(registry.store, model.id) is None, "a later run would resume the refused run's training"
    registry.download_artifacts(current, tmp_path / "v2")  # complete, digests verified
