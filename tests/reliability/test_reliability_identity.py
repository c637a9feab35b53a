"""Identity on every read (issue 20: points 1, 2, 10 and 12).

Each record says what it is (its id, dataset, model, version); a record copied to another
key (by hand, a bad sync, an attacker with write access) is unreadable there, by name,
and never makes a step read or write another dataset's, item's or model's data. A model
deleted under a run stops it and leaves nothing of it behind; a name works wherever an id does.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from adapter_base import Filters, Item, NotFoundError, Registry, ValidationError, sharding
from adapter_base.cli.main import main as cli_main
from adapter_base.registry import layout
from adapter_base.registry.checkpoints import stored_checkpoints
from adapter_base.storage import ObjectStore
from reliability_support import SlowAdapter, count_sets, dataset_with_model, run_cli, start_cli, subprocess_env, wait_for
from support.images import BRIGHT, DARK, add_shade_items

pytestmark = [pytest.mark.reliability]


@pytest.fixture
def registry(store: ObjectStore) -> Iterator[Registry]:
    """A registry over the parametrized ``store`` (local, SeaweedFS, rclone)."""
    reg = Registry(store, io_workers=4)
    yield reg
    reg.pool.shutdown(wait=True)  # the store fixture closes the store


def copy_record(registry: Registry, src: str, dst: str) -> None:
    """Copy the record at ``src`` over the one at ``dst``, as anyone with write access could."""
    registry.store.put_bytes(dst, registry.store.get_bytes(src), "application/json")


def two_datasets(registry: Registry, n: int = 4) -> tuple:
    """Dataset ``shades`` (A) with a model saved as version 1, and dataset ``other`` (B), ``n`` images each."""
    a, a_items, model = dataset_with_model(registry, n)
    b = registry.create_dataset("other", labels=[BRIGHT, DARK])
    b_items = add_shade_items(registry, b, n, prefix="b", subset="test")
    return a, a_items, b, b_items, model


def forge_item(registry: Registry, a, a_item: Item, b_item: Item) -> None:
    """Put ``b_item``'s record (of dataset B) at ``a_item``'s key; drop A's record pages (a cache)."""
    copy_record(registry, layout.item_record(b_item.dataset_id, b_item.id), layout.item_record(a.id, a_item.id))
    registry.store.delete_prefix(layout.record_pages_prefix(a.id))


# --------------------------------------------------------------------------- 1. item records


def test_an_item_record_copied_from_another_dataset_is_that_items_error_and_nothing_is_written_there(registry: Registry) -> None:
    """Issue 20.1: the copy was listed as B's item, so predict wrote B's prediction set and never predicted A's item."""
    a, a_items, b, b_items, model = two_datasets(registry)
    forged, renamed = a_items[0], a_items[1]
    forge_item(registry, a, forged, b_items[0])
    # and one that keeps its own id but names dataset B
    key = layout.item_record(a.id, renamed.id)
    record = registry.store.get_json(key)
    registry.store.put_json(key, {**record, "dataset_id": b.id})

    for listing in (registry.iter_item_results(a), registry.iter_item_results(a, Filters(item_ids=[it.id for it in a_items]))):
        results = dict(listing)
        assert isinstance(results[forged.id], ValidationError) and "Item.id" in str(results[forged.id])
        assert layout.item_record(a.id, forged.id) in str(results[forged.id])
        assert isinstance(results[renamed.id], ValidationError) and "Item.dataset_id" in str(results[renamed.id])
        assert all(isinstance(results[it.id], Item) and results[it.id].dataset_id == a.id for it in a_items[2:])
    assert {it.id for it in registry.iter_items(a)} == {it.id for it in a_items[2:]}  # the warm listing, from pages, too
    with pytest.raises(ValidationError, match="Item.id"):
        registry.get_item(a.id, forged.id)

    adapter = SlowAdapter(registry=registry)
    adapter.load_from_model(model)
    report = adapter.predict_dataset(a)
    assert report.succeeded == len(a_items) - 2
    assert {(f.item_id, f.stage) for f in report.failures} == {(forged.id, "list"), (renamed.id, "list")}
    assert count_sets(registry.store, b.id, model.id) == 0, "a prediction set was written into the other dataset"
    assert count_sets(registry.store, a.id, model.id) == len(a_items) - 2


def test_a_forged_record_page_copy_is_not_served(registry: Registry) -> None:
    """A page line holds a copy and the etag of the record it copies: a copy of another record under
    that etag must not stand for the record (it is read itself, and the page repaired)."""
    a, a_items, b, b_items, _ = two_datasets(registry)
    assert len(list(registry.iter_items(a))) == len(a_items)  # pages written
    page_key = next(o.key for o in registry.store.list(layout.record_pages_prefix(a.id)))
    victim = a_items[0].id + ".json"
    lines = []
    for line in registry.store.get_bytes(page_key).split(b"\n"):
        name, _, rest = line.partition(b"\t")
        if name.decode() == victim:
            etag, _, _ = rest.partition(b"\t")
            line = b"\t".join([name, etag, registry.store.get_bytes(layout.item_record(b.id, b_items[0].id)).replace(b"\n", b"")])
        lines.append(line)
    registry.store.put_bytes(page_key, b"\n".join(lines), "text/tab-separated-values")

    for _ in range(2):  # served from the record, then from the repaired page
        listed = {it.id: it for it in registry.iter_items(a)}
        assert set(listed) == {it.id for it in a_items}
        assert listed[a_items[0].id].path == a_items[0].path and listed[a_items[0].id].dataset_id == a.id


def test_predict_from_the_cli_never_writes_into_another_dataset(local_registry: Registry) -> None:
    """Issue 20.1 as reported: ``predict --dataset A`` said "30 predicted, 0 failed" and wrote under B."""
    registry = local_registry
    a, a_items, b, b_items, model = two_datasets(registry, 3)
    forge_item(registry, a, a_items[0], b_items[0])
    proc = run_cli(["predict", model.name, "--dataset", a.name, "--store", str(registry.store.root)])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2 predicted" in proc.stdout and "1 failed" in proc.stdout
    assert a_items[0].id in proc.stdout and layout.item_record(a.id, a_items[0].id) in proc.stdout
    assert count_sets(registry.store, b.id, model.id) == 0
    assert count_sets(registry.store, a.id, model.id) == 2
    shown = run_cli(["predictions", "show", a_items[0].id, "--dataset", a.name, "--store", str(registry.store.root)])
    assert shown.returncode == 1 and "Item.id" in shown.stderr and b_items[0].path not in shown.stdout


def test_evaluation_fails_the_forged_item_by_name(local_registry: Registry) -> None:
    registry = local_registry
    a, a_items, b, b_items, model = two_datasets(registry, 4)
    forge_item(registry, a, a_items[0], b_items[0])
    adapter = SlowAdapter(registry=registry)
    result = adapter.evaluate_model(model, a, filters={"subset": "test"})
    assert result.metrics["items_failed"] == 1
    assert [f.item_id for f in result.prediction.failures] == [a_items[0].id]
    assert count_sets(registry.store, b.id, model.id) == 0


def test_training_data_holds_no_item_of_another_dataset(local_registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Training read B's bytes the same way: the forged record put B's file into A's training data."""
    registry = local_registry
    a, _, model = dataset_with_model(registry, 1, train=3)
    train_items = list(registry.iter_items(a, {"subset": "train"}))
    b = registry.create_dataset("other", labels=[BRIGHT, DARK])
    b_items = add_shade_items(registry, b, 1, prefix="b", subset="train")
    forge_item(registry, a, train_items[0], b_items[0])
    adapter = SlowAdapter(registry=registry)
    adapter.load_from_model(model)
    data_path, _ = adapter.prepare_data(a, root_path=str(tmp_path / "root"))
    files = sorted(p.relative_to(data_path / "train" / "items").as_posix() for p in (data_path / "train" / "items").rglob("*.png"))
    assert files == sorted(it.path for it in train_items[1:])
    assert f"skipping item {train_items[0].id}" in caplog.text and "Item.id" in caplog.text


def test_a_shard_reads_no_item_of_another_dataset(local_registry: Registry) -> None:
    """The shard path: the split copies each record; a forged record fails by name, a forged copy is not used."""
    registry = local_registry
    a, a_items, b, b_items, _ = two_datasets(registry, 4)
    forge_item(registry, a, a_items[0], b_items[0])
    index = sharding.write_shards(registry.store, "run-1", a.id, registry.iter_item_results(a), 1)
    ids = sharding.read_shard(registry.store, index, 0)
    records = layout.shard_records("run-1", 0)
    # a copy line of B's record where A's second item's copy was
    lines = registry.store.get_bytes(records).decode().splitlines()
    lines[ids.index(a_items[1].id)] = registry.get_item(b.id, b_items[1].id).to_json()
    registry.store.put_bytes(records, ("\n".join(lines) + "\n").encode())
    got = dict(sharding.iter_shard_items(registry, a.id, ids, records))
    assert isinstance(got[a_items[0].id], ValidationError) and "Item.id" in str(got[a_items[0].id])
    assert got[a_items[1].id] == a_items[1]
    assert all(got[it.id] == it for it in a_items[1:])


def test_a_shard_manifest_of_another_shard_is_refused(local_registry: Registry) -> None:
    registry = local_registry
    a, a_items, _, _, _ = two_datasets(registry, 4)
    index = sharding.write_shards(registry.store, "run-2", a.id, registry.iter_item_results(a), 2)
    copy_record(registry, layout.shard_manifest("run-2", 1), layout.shard_manifest("run-2", 0))
    with pytest.raises(ValidationError, match=r"shard: the record at .*0000\.json"):
        sharding.read_shard(registry.store, index, 0)
    assert len(sharding.read_shard(registry.store, index, 1)) == 2


def test_dataset_and_model_records_copied_to_another_key_are_refused(local_registry: Registry) -> None:
    registry = local_registry
    a, _, b, _, model = two_datasets(registry, 1)
    other = SlowAdapter(registry=registry).save_from_scratch(registry.create_model("other", adapter="reliability_support:SlowAdapter"))
    copy_record(registry, layout.dataset_record(b.id), layout.dataset_record(a.id))
    with pytest.raises(ValidationError, match=r"Dataset\.id: the record at .*" + a.id):
        registry.get_dataset(a.name)
    copy_record(registry, layout.model_record(other.id), layout.model_record(model.id))
    with pytest.raises(ValidationError, match=r"Model\.id"):
        registry.get_model(model.name)


def test_a_name_entry_pointing_at_another_record_is_refused(local_registry: Registry) -> None:
    """``--dataset other`` must not work on ``shades`` because a name entry was copied."""
    registry = local_registry
    a, _, b, _, model = two_datasets(registry, 1)
    copy_record(registry, layout.dataset_name(a.name), layout.dataset_name(b.name))
    with pytest.raises(ValidationError, match=r"Dataset\.name: the record at .* says name 'shades' where its key says 'other'"):
        registry.get_dataset(b.name)
    assert registry.get_dataset(a.name).id == a.id and registry.get_dataset(b.id).id == b.id
    other = registry.create_model("other")
    copy_record(registry, layout.model_name(model.name), layout.model_name(other.name))
    with pytest.raises(ValidationError, match=r"Model\.name"):
        registry.get_model("other")
    assert registry.get_model(model.name).id == model.id and registry.get_model(other.id).id == other.id
    assert [d.name for d in registry.list_datasets()] == ["shades"]  # each record once, under its own name
    assert [m.name for m in registry.list_models()] == ["slow"]


# --------------------------------------------------------------------------- 2. prediction sets, ground truth


@pytest.mark.slow
def test_another_items_prediction_set_is_not_done_and_not_exported_as_this_items(local_registry: Registry, tmp_path: Path) -> None:
    """Issue 20.2: a set copied from item A to item B made ``--resume`` skip B and ``export`` show A's label on B."""
    registry = local_registry
    ds, items, model = dataset_with_model(registry, 4)
    store = str(registry.store.root)
    assert run_cli(["predict", model.name, "--dataset", ds.name, "--store", store]).returncode == 0
    bright, dark = items[0], items[1]  # shade items alternate bright, dark
    copy_record(registry, layout.predictions(ds.id, bright.id, model.id, 1), layout.predictions(ds.id, dark.id, model.id, 1))
    with pytest.raises(ValidationError, match=r"PredictionSet\.item_id") as info:
        registry.get_predictions(dark, model.id)
    assert layout.predictions(ds.id, dark.id, model.id, 1) in str(info.value)

    out = tmp_path / "preds.jsonl"
    proc = run_cli(["predictions", "export", model.name, "--dataset", ds.name, "--format", "jsonl", "-o", str(out), "--store", store])
    assert proc.returncode == 0, proc.stderr
    rows = {r["item_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert dark.id not in rows and len(rows) == len(items) - 1
    assert "unreadable prediction set" in proc.stdout and dark.id in proc.stderr

    proc = run_cli(["predict", model.name, "--dataset", ds.name, "--resume", "--store", store])
    assert proc.returncode == 0, proc.stderr
    assert "1 predicted, 3 already done" in proc.stdout
    pset = registry.get_predictions(dark, model.id)
    assert pset.item_id == dark.id and pset.annotations[0].label == DARK


def test_a_set_of_another_model_or_version_is_not_done(local_registry: Registry) -> None:
    registry = local_registry
    ds, items, model = dataset_with_model(registry, 2)
    other = SlowAdapter(registry=registry).save_from_scratch(registry.create_model("other", adapter="reliability_support:SlowAdapter"))
    for m in (model, other):
        adapter = SlowAdapter(registry=registry)
        adapter.load_from_model(m)
        assert adapter.predict_dataset(ds).succeeded == 2
    copy_record(registry, layout.predictions(ds.id, items[0].id, other.id, 1), layout.predictions(ds.id, items[0].id, model.id, 1))
    with pytest.raises(ValidationError, match=r"PredictionSet\.model_id"):
        registry.get_predictions(items[0], model.id)
    newer = SlowAdapter(registry=registry).save_from_scratch(model)  # version 2: the v1 set of items[1] is not done either
    adapter = SlowAdapter(registry=registry)
    adapter.load_from_model(newer)
    report = adapter.predict_dataset(ds, resume=True)
    assert (report.succeeded, report.skipped) == (2, 0)
    assert all(registry.get_predictions(it, model.id).model_version == 2 for it in items)


def test_ground_truth_of_another_item_is_refused(local_registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    """A dark item given a bright item's ground truth: refused on read; evaluation goes on without it and names it."""
    registry = local_registry
    ds, items, model = dataset_with_model(registry, 4)
    copy_record(registry, layout.ground_truth(ds.id, items[0].id), layout.ground_truth(ds.id, items[1].id))
    with pytest.raises(ValidationError, match=r"AnnotationCollection\.item_id: the record at .*ground_truth"):
        registry.get_ground_truth(items[1])
    assert registry.get_ground_truth(items[0]).annotations[0].label == BRIGHT
    result = SlowAdapter(registry=registry).evaluate_model(model, ds)
    assert result.metrics["count"] == 3 and result.metrics["items_without_ground_truth"] == 1
    assert result.metrics["accuracy"] == 1.0
    assert items[1].id in caplog.text and "AnnotationCollection.item_id" in caplog.text


def test_manifests_and_checkpoint_sets_of_another_model_or_version_are_refused(local_registry: Registry, tmp_path: Path) -> None:
    registry = local_registry
    _, _, model = dataset_with_model(registry, 1)
    model = SlowAdapter(registry=registry).save_from_scratch(model)  # version 2
    other = SlowAdapter(registry=registry).save_from_scratch(registry.create_model("other", adapter="reliability_support:SlowAdapter"))
    copy_record(registry, layout.manifest(model.id, 1), layout.manifest(model.id, 2))
    with pytest.raises(ValidationError, match=r"ArtifactManifest\.version"):
        registry.list_versions(model)
    copy_record(registry, layout.manifest(other.id, 1), layout.manifest(model.id, 1))
    with pytest.raises(ValidationError, match=r"ArtifactManifest\.model_id"):
        registry.get_manifest(model, 1)
    with pytest.raises(ValidationError, match=r"ArtifactManifest\.model_id"):
        registry.download_artifacts(model, tmp_path / "v1", version=1)
    record = registry.store.get_json(layout.model_record(model.id))
    registry.store.put_json(layout.model_record(model.id), {**record, "artifacts": {**record["artifacts"], "model_id": other.id}})
    with pytest.raises(ValidationError, match=r"ArtifactManifest\.model_id"):
        registry.get_model(model.id)

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "w.bin").write_bytes(b"w")
    registry.stage_artifacts(other, tmp_path / "run", "run-1")
    copy_record(registry, layout.staged_manifest(other.id, "run-1"), layout.staged_manifest(model.id, "run-1"))
    with pytest.raises(ValidationError, match=r"ArtifactManifest\.model_id"):
        registry.versions.staged(model, "run-1")
    registry.store.put_json(layout.checkpoint_set(other.id), {"model_id": other.id, "generation": 1, "files": [], "generations": {}})
    copy_record(registry, layout.checkpoint_set(other.id), layout.checkpoint_set(model.id))
    with pytest.raises(ValidationError, match=r"CheckpointSet\.model_id"):
        stored_checkpoints(registry.store, model.id)


def test_an_evaluation_of_another_model_is_no_baseline(local_registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    """Metrics copied from another model's evaluation are skipped: the latest of this model's own is taken."""
    registry = local_registry
    ds, _, model = dataset_with_model(registry, 2)
    other = SlowAdapter(registry=registry).save_from_scratch(registry.create_model("other", adapter="reliability_support:SlowAdapter"))
    own = registry.write_evaluation(model, {"model_id": model.id, "model_version": 1, "accuracy": 0.5}, "<html/>")
    forged = registry.write_evaluation(model, {"model_id": other.id, "model_version": 1, "accuracy": 1.0}, "<html/>")
    assert forged > own
    assert registry.latest_evaluation(model, 1)["accuracy"] == 0.5
    assert "model_id" in caplog.text and other.id in caplog.text


# --------------------------------------------------------------------------- 10. model delete


def test_model_delete_removes_its_prediction_sets_and_runs_and_can_be_rerun(local_registry: Registry) -> None:
    """Issue 20.10: ``model delete`` left every prediction set and run of the model behind."""
    registry = local_registry
    a, _, b, b_items, model = two_datasets(registry, 3)
    other = SlowAdapter(registry=registry).save_from_scratch(registry.create_model("other", adapter="reliability_support:SlowAdapter"))
    runs = {}
    for m in (model, other):
        adapter = SlowAdapter(registry=registry)
        adapter.load_from_model(m)
        runs[m.id] = [adapter.predict_dataset(ds).run_id for ds in (a, b)]
    store = registry.store
    store.put_json(layout.prediction_summary("pipeline-run"), sharding.merge_reports([{"model_id": model.id, "total": 1}], run_id="pipeline-run"))
    runs[model.id].append("pipeline-run")  # a sharded run's summary names its model(s)
    # interrupted right after the record went: no set removed yet, the name left
    original_delete = store.delete
    store.delete = lambda key: (_ for _ in ()).throw(OSError("injected")) if "/predictions/" in key else original_delete(key)  # type: ignore[method-assign]
    with pytest.raises(OSError):
        registry.delete_model(model)
    del store.delete
    assert count_sets(store, a.id, model.id) == 3

    assert cli_main(["model", "delete", model.name, "--yes", "--store", str(store.root)]) == 0
    for ds in (a, b):
        assert count_sets(store, ds.id, model.id) == 0
        assert count_sets(store, ds.id, other.id) == 3
    reports = dict(registry.iter_run_reports())
    assert not set(runs[model.id]) & set(reports) and set(runs[other.id]) <= set(reports)
    assert not store.exists(layout.model_name(model.name))
    with pytest.raises(NotFoundError):
        registry.get_model(model.name)
    assert cli_main(["model", "delete", model.name, "--yes", "--store", str(store.root)]) == 1  # nothing left: not found


@pytest.mark.slow
def test_a_model_deleted_while_it_predicts_stops_the_run_and_leaves_nothing(store_uri: str, tmp_path: Path) -> None:
    """Issue 20.10: the run went on ("ok") and left 30 prediction sets of a model that no longer existed."""
    with Registry.open(store_uri) as registry:
        ds, items, model = dataset_with_model(registry, 60, configuration={"delay_s": 0.3})
        env = subprocess_env()
        proc = start_cli(["predict", model.name, "--dataset", ds.name, "--batch-size", "2", "--store", store_uri], env=env, log=tmp_path / "log")
        try:
            wait_for(lambda: count_sets(registry.store, ds.id, model.id) >= 2, 60, "the first prediction sets")
            deleted = run_cli(["model", "delete", model.name, "--yes", "--store", store_uri], env=env)
            assert deleted.returncode == 0, deleted.stderr
            assert proc.wait(60) == 1
        finally:
            if proc.poll() is None:
                proc.kill()
        out = (tmp_path / "log").read_text()
        assert "NotFoundError" in out and model.name in out and "deleted" in out, out
        time.sleep(0.5)  # nothing is written after the exit either
        assert count_sets(registry.store, ds.id, model.id) == 0
        assert not [r for _, r in registry.iter_run_reports() if r.get("model_id") == model.id]


def test_an_evaluation_of_a_model_deleted_under_it_stops_and_stores_nothing(local_registry: Registry) -> None:
    """The Python API: ``evaluate_model`` of a model deleted while it predicts raises NotFoundError naming it."""
    registry = local_registry
    ds, _, model = dataset_with_model(registry, 30, configuration={"delay_s": 0.2})
    adapter = SlowAdapter(registry=registry)
    adapter.load_from_model(model)

    def delete_when_predicting() -> None:
        wait_for(lambda: count_sets(registry.store, ds.id, model.id) >= 2, 60, "the first prediction sets")
        registry.delete_model(model)

    deleter = threading.Thread(target=delete_when_predicting)
    deleter.start()
    try:
        with pytest.raises(NotFoundError, match=f"model 'slow' \\({model.id}\\) was deleted"):
            adapter.evaluate_model(model, ds, filters={"subset": "test"}, batch_size=2)
    finally:
        deleter.join(60)
    assert count_sets(registry.store, ds.id, model.id) == 0
    assert not list(registry.store.list(layout.model_prefix(model.id)))  # no evaluation, no record
    assert not list(registry.iter_run_reports())


# --------------------------------------------------------------------------- 12. names and ids


def test_every_dataset_argument_takes_a_name_or_an_id(local_registry: Registry) -> None:
    """Issue 20.12: ``count_items("mydataset")`` was 0 and ``iter_items("mydataset")`` empty: a str was taken as an id."""
    registry = local_registry
    ds, items, _ = dataset_with_model(registry, 3)
    for ref in (ds, ds.name, ds.id):
        assert registry.count_items(ref) == 3
        assert {it.id for it in registry.iter_items(ref)} == {it.id for it in items}
        assert len(list(registry.iter_item_results(ref, {"subset": "test"}))) == 3
        assert registry.count_by_subset(ref, ["test"]) == {"test": 3, "all": 3}
    for call in (registry.iter_items, registry.iter_item_results, registry.count_items, lambda d: registry.count_by_subset(d, ["test"])):
        with pytest.raises(NotFoundError, match="no-such-dataset"):
            call("no-such-dataset")  # at once, before any iteration
    registry.delete_dataset(ds)
    with pytest.raises(NotFoundError, match=ds.id):
        registry.count_items(ds)  # an entity of a deleted dataset is no empty dataset either


def test_the_pre_run_count_includes_a_forged_item_the_run_will_fail(local_registry: Registry) -> None:
    """The count a run's pre-check gives (its progress bar's total) is every item the run lists, the
    unreadable ones included: they are listed and failed by name, not left out of the total."""
    from adapter_base.flows.preflight import item_census, require_items

    a, a_items, b, b_items, _ = two_datasets(local_registry)
    forge_item(local_registry, a, a_items[0], b_items[0])
    census = item_census(local_registry, a, {"subset": "test"})
    assert (census.matched, census.unreadable) == (len(a_items) - 1, 1)
    assert require_items(local_registry, a, {"subset": "test"}, "predict") == len(a_items)
