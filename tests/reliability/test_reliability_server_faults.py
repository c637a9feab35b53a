"""The S3 server (a real SeaweedFS) is SIGKILLed and restarted in the middle of an operation.

Each test has its own server (``own_seaweed``). The fault is injected at a fixed point of
the operation (the n-th upload, the n-th prediction write, a few MiB into a download) so it
always lands mid-way. Afterwards: the operation completed through the store's retries, or
it failed with a clear ``StoreError`` and a rerun completes; the registry never shows a
partial version; every download verifies its digests; every item has exactly one set.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from adapter_base import Registry, StoreError
from adapter_base.registry import layout
from adapter_base.local_dirs import MARKER
from reliability_support import (
    Outage,
    SlowAdapter,
    count_sets,
    dataset_with_model,
    existing_sets,
    one_set_each,
    report_json,
    run_cli,
    start_cli,
    subprocess_env,
    wait_for,
)

pytestmark = [pytest.mark.reliability, pytest.mark.s3, pytest.mark.slow]

MiB = 1 << 20


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_complete_version(registry: Registry, model_id: str, version: int, dest: Path) -> None:
    """The model's current version is ``version``, its manifest is complete and every digest verifies."""
    model = registry.get_model(model_id)
    assert model.version == version, f"model is at version {model.version}, expected {version}"
    assert model.artifacts is not None and model.artifacts.version == version
    stored = registry.store.get_json(layout.manifest(model_id, version))
    assert stored == model.artifacts.to_dict(), "the model record and the version's manifest disagree"
    manifest = registry.download_artifacts(model, dest)  # raises on any digest mismatch
    local = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert local == sorted(f.path for f in manifest.files)
    for f in manifest.files:
        assert _sha(dest / f.path) == f.sha256


# --------------------------------------------------------------------------- predict


@pytest.mark.parametrize("workers", [False, True], ids=["threads", "worker-processes"])
def test_predict_dataset_completes_through_a_server_restart(own_registry: Registry, own_seaweed, workers: bool) -> None:
    """The server is killed and started again mid-run. On the threads (the store's ``put_bytes`` wrapped on the
    object, which keeps reads and writes in this process) the fault lands on the 8th prediction write; with
    the items read and their sets written by worker processes (the default on 2 CPUs), during the third
    batch, with reads and writes in flight there: their own stores retry through it as this process's do."""
    from adapter_base.prediction.options import PredictionOptions
    from adapter_base.prediction.pools import plan_pools

    ds, items, model = dataset_with_model(own_registry, 40, configuration={"batch_size": 4, "delay_s": 0.02, "write_in_processes": workers})
    adapter = SlowAdapter(registry=own_registry)
    adapter.load_from_model(model)
    outage = Outage(own_seaweed, down_s=2.5)
    if workers:
        outage.after_calls(adapter, "predict", 3)
    else:
        outage.after_calls(own_registry.store, "put_bytes", 8)
    pools = plan_pools(PredictionOptions.from_configuration(adapter.configuration), own_registry.store, default_prepare=True, cpus=2)
    assert bool(pools.batch_processes and pools.write_processes) == workers

    report = adapter.predict_dataset(ds)

    assert outage.fired and outage.restarted_at is not None
    assert report.ok, report.summary()
    assert report.succeeded == 40 and report.total == 40 and report.skipped == 0
    sets = one_set_each(own_registry, items, model)
    assert {p.run_id for p in sets.values()} == {report.run_id}
    assert own_registry.store.get_json(layout.run_prefix(report.run_id) + "prediction-report.json")["succeeded"] == 40


def test_predict_process_outliving_the_retries_is_resumed_without_redoing_items(own_registry: Registry, own_seaweed, tmp_path: Path) -> None:
    """The server stays down past the retry deadline: the CLI run fails cleanly; rerun with
    ``--resume`` after the server is back predicts only the missing items."""
    ds, items, model = dataset_with_model(own_registry, 40, configuration={"batch_size": 4, "delay_s": 0.2})
    uri = own_registry.store.uri
    args = ["predict", model.name, "--dataset", ds.name, "--store", uri, "--report"]
    proc = start_cli(args, env=subprocess_env({"MODEL_ADAPTER_S3_RETRY_DEADLINE": "1"}), log=tmp_path / "first.log")
    try:
        wait_for(lambda: count_sets(own_registry.store, ds.id, model.id) >= 6 or proc.poll() is not None, 60, "the first prediction sets")
        assert proc.poll() is None, (tmp_path / "first.log").read_text()
        own_seaweed.kill()
        proc.wait(90)
    finally:
        if proc.poll() is None:
            proc.kill()
    first_log = (tmp_path / "first.log").read_text()
    assert proc.returncode != 0, first_log
    assert "retrying for 1s" in first_log and "MODEL_ADAPTER_S3_RETRY_DEADLINE" in first_log, first_log

    own_seaweed.start()
    before = existing_sets(own_registry, items, model)
    assert 6 <= len(before) < 40, f"{len(before)} sets before the outage"

    rerun = run_cli(args + ["--resume"])
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    report = report_json(rerun.stdout)
    assert report["skipped"] == len(before) and report["succeeded"] == 40 - len(before) and report["failed"] == 0
    after = one_set_each(own_registry, items, model)
    for item_id, pset in before.items():  # finished items were not redone
        assert (after[item_id].run_id, after[item_id].created_at) == (pset.run_id, pset.created_at)
    assert {after[i.id].run_id for i in items if i.id not in before} == {report["run_id"]}


# --------------------------------------------------------------------------- save


def test_save_to_model_completes_through_a_server_restart(own_registry: Registry, own_seaweed, tmp_path: Path) -> None:
    """Many artifact files; the server dies before the 4th upload and is back 2.5 s later."""
    _, _, model = dataset_with_model(own_registry, 1, configuration={"artifact_files": 12, "artifact_bytes": MiB})
    adapter = SlowAdapter(registry=own_registry)
    adapter.load_from_model(model)
    outage = Outage(own_seaweed).after_calls(own_registry.store, "put_file", 4)

    saved = adapter.save_to_model()

    assert outage.fired and saved.version == 2
    assert_complete_version(own_registry, model.id, 2, tmp_path / "v2")
    assert len(saved.artifacts.files) == 13


def test_save_of_a_big_file_completes_through_a_server_restart(own_registry: Registry, own_seaweed, tmp_path: Path) -> None:
    """One 40 MiB artifact (a multipart upload: 16 MiB parts); the server dies 0.2 s into it."""
    _, _, model = dataset_with_model(own_registry, 1, configuration={"artifact_files": 1, "artifact_bytes": 40 * MiB})
    adapter = SlowAdapter(registry=own_registry)
    adapter.load_from_model(model)
    outage = Outage(own_seaweed)
    original = own_registry.store.put_file

    def put_file(key, path, *a, **kw):
        if key.endswith("blob-000.bin"):
            timer = threading.Timer(0.2, outage.trigger)
            timer.start()
        return original(key, path, *a, **kw)

    own_registry.store.put_file = put_file
    saved = adapter.save_to_model()
    assert outage.fired and saved.version == 2
    assert_complete_version(own_registry, model.id, 2, tmp_path / "v2")


def test_save_failing_past_the_deadline_leaves_the_previous_version(own_seaweed, own_store_uri: str, tmp_path: Path, monkeypatch) -> None:
    """The server dies mid-upload and stays down: save fails with a StoreError; the registry
    still shows version 1, complete; once the server is back a rerun saves version 2."""
    with Registry.open(own_store_uri) as registry:
        _, _, model = dataset_with_model(registry, 1, configuration={"artifact_files": 8, "artifact_bytes": 256 * 1024})
        v1_files = model.artifacts.files
    monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "2")
    with Registry.open(own_store_uri) as registry:
        adapter = SlowAdapter(registry=registry)
        adapter.load_from_model(model)
        Outage(own_seaweed, restart=False).after_calls(registry.store, "put_file", 3)
        with pytest.raises(StoreError) as info:
            adapter.save_to_model()
    message = str(info.value)
    assert "put_file" in message and "blob-" in message and "retrying for 2s" in message, message

    own_seaweed.start()
    monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "30")
    with Registry.open(own_store_uri) as registry:
        assert not registry.store.exists(layout.manifest(model.id, 2)), "a manifest was written for an incomplete version"
        assert_complete_version(registry, model.id, 1, tmp_path / "v1")
        assert registry.get_model(model.id).artifacts.files == v1_files
        adapter = SlowAdapter(registry=registry)
        adapter.load_from_model(model.id)
        assert adapter.save_to_model().version == 2
        assert_complete_version(registry, model.id, 2, tmp_path / "v2")


def test_save_failing_between_manifest_and_record_never_shows_a_partial_version(own_seaweed, own_store_uri: str, tmp_path: Path, monkeypatch) -> None:
    """The server dies after the version's manifest is written but before the model record
    points at it: the model stays at version 1; the rerun becomes version 3, complete."""
    with Registry.open(own_store_uri) as registry:
        _, _, model = dataset_with_model(registry, 1, configuration={"artifact_files": 2, "artifact_bytes": 1024})
    monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "1")
    with Registry.open(own_store_uri) as registry:
        adapter = SlowAdapter(registry=registry)
        adapter.load_from_model(model)
        Outage(own_seaweed, restart=False).after_calls(registry.store, "put_bytes", 3)  # 1: version claim, 2: manifest, 3: model record
        with pytest.raises(StoreError):
            adapter.save_to_model()
    own_seaweed.start()
    monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "30")
    with Registry.open(own_store_uri) as registry:
        assert registry.store.exists(layout.manifest(model.id, 2))
        assert_complete_version(registry, model.id, 1, tmp_path / "v1")
        adapter = SlowAdapter(registry=registry)
        adapter.load_from_model(model.id)
        assert adapter.save_to_model().version == 3
        assert_complete_version(registry, model.id, 3, tmp_path / "v3")


# --------------------------------------------------------------------------- load


def test_load_from_model_completes_through_a_server_restart(own_registry: Registry, own_seaweed, tmp_path: Path) -> None:
    """Many artifact files; the server dies before the 3rd download and is back 2.5 s later."""
    _, _, model = dataset_with_model(own_registry, 1, configuration={"artifact_files": 12, "artifact_bytes": MiB})
    adapter = SlowAdapter(registry=own_registry)
    outage = Outage(own_seaweed).after_calls(own_registry.store, "open_read", 3)
    path = adapter.load_from_model(model, local_path=str(tmp_path / "load"))
    assert outage.fired
    for f in model.artifacts.files:
        assert _sha(path / f.path) == f.sha256
    assert not list(path.rglob("*.partial"))


def test_load_from_model_survives_a_restart_in_the_middle_of_a_download(own_registry: Registry, own_seaweed, tmp_path: Path) -> None:
    """One 24 MiB artifact; the server dies after the first 2 MiB have been read."""
    _, _, model = dataset_with_model(own_registry, 1, configuration={"artifact_files": 1, "artifact_bytes": 24 * MiB})
    adapter = SlowAdapter(registry=own_registry)
    outage = Outage(own_seaweed).mid_stream(own_registry.store, 2 * MiB)
    path = adapter.load_from_model(model, local_path=str(tmp_path / "load"))
    assert outage.fired
    for f in model.artifacts.files:
        assert _sha(path / f.path) == f.sha256
    assert not list(path.rglob("*.partial"))


def test_load_failing_past_the_deadline_leaves_no_partial_file_and_a_rerun_loads(own_seaweed, own_store_uri: str, tmp_path: Path, monkeypatch) -> None:
    with Registry.open(own_store_uri) as registry:
        _, _, model = dataset_with_model(registry, 1, configuration={"artifact_files": 6, "artifact_bytes": 512 * 1024})
    monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "1")
    dest = tmp_path / "load"
    with Registry.open(own_store_uri) as registry:
        adapter = SlowAdapter(registry=registry)
        Outage(own_seaweed, restart=False).after_calls(registry.store, "open_read", 3)
        with pytest.raises(StoreError) as info:
            adapter.load_from_model(model, local_path=str(dest))
    assert "blob-" in str(info.value), str(info.value)
    assert not list(dest.rglob("*.partial"))
    expected = {f.path: f.sha256 for f in model.artifacts.files}
    for p in dest.rglob("*"):  # whatever is there is complete and verified
        assert p.is_dir() or p.name == MARKER or expected[p.relative_to(dest).as_posix()] == _sha(p)

    own_seaweed.start()
    monkeypatch.setenv("MODEL_ADAPTER_S3_RETRY_DEADLINE", "30")
    with Registry.open(own_store_uri) as registry:
        path = SlowAdapter(registry=registry).load_from_model(model, local_path=str(dest))
    assert {p.relative_to(path).as_posix(): _sha(p) for p in path.rglob("*") if p.is_file() and p.name != MARKER} == expected
