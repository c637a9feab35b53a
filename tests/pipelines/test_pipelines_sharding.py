"""``adapter_base.sharding``: shard manifests, reading a shard, merging shard reports."""

from __future__ import annotations

import pytest

from adapter_base import Registry, ValidationError
from adapter_base.errors import NotFoundError
from adapter_base.sharding import (
    iter_shard_items,
    merge_reports,
    read_shard,
    split_evenly,
    summary_markdown,
    write_shards,
)
from adapter_base.registry import layout
from adapter_base.storage import LocalStore
from adapter_base.storage.counting import CountingStore


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
    assert store.exists(layout.shard_manifest("run-1", 2))
    with pytest.raises(ValidationError, match="no shard 3"):
        read_shard(store, index, 3)


def test_keys_live_under_the_run():
    assert layout.shard_manifest("r", 1) == "runs/r/shards/0001.json"
    assert layout.shard_report("r", 12) == "runs/r/shards/0012.report.json"
    assert layout.prediction_summary("r") == "runs/r/prediction-summary.json"


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


def test_write_shards_streams_a_listing_it_never_holds(tmp_path):
    """Issue 15, target 3: a listing is spooled and each manifest written id by id, so memory does not grow with it."""
    import tracemalloc

    store = LocalStore(tmp_path / "store")
    n = 200_000
    tracemalloc.start()
    try:
        index = write_shards(store, "big", "ds", (f"item-{i:09d}" for i in range(n)), 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [s["count"] for s in index["shards"]] == [66_667, 66_667, 66_666] and index["total"] == n
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB traced while writing shards of {n} ids (a list of them alone takes ~15 MiB)"
    got = [read_shard(store, index, s) for s in range(3)]
    assert [len(g) for g in got] == [66_667, 66_667, 66_666]
    assert got[0][0] == "item-000000000" and got[2][-1] == f"item-{n - 1:09d}"
    assert [i for g in got for i in g] == [f"item-{i:09d}" for i in range(n)]


# --- record copies -----------------------------------------------------------------------


def _dataset_with_shards(registry: Registry, n: int, run_id: str = "run-1"):
    ds = registry.create_dataset("copies")
    for i in range(n):
        registry.add_item(ds, f"{i:02d}.txt", b"x", metadata={"i": i})
    index = write_shards(registry.store, run_id, ds.id, registry.iter_item_results(ds.id), 2)
    return ds, index


def _read_through_a_counter(registry: Registry, ds, ids, records_key):
    counting = CountingStore(registry.store)
    reader = Registry(counting, io_workers=2)
    try:
        out = list(iter_shard_items(reader, ds.id, ids, records_key))
        return out, counting.snapshot()
    finally:
        reader.pool.shutdown(wait=True)


def test_a_shard_gets_its_records_from_the_splits_copies_in_one_request(tmp_path):
    with Registry.open(str(tmp_path / "store"), io_workers=2) as registry:
        ds, index = _dataset_with_shards(registry, 10)
        ids = read_shard(registry.store, index, 1)
        out, counts = _read_through_a_counter(registry, ds, ids, layout.shard_records("run-1", 1))
        assert [i for i, _ in out] == ids
        assert [item.to_dict() for _, item in out] == [registry.get_item(ds.id, i).to_dict() for i in ids]
    assert counts == {"get": 1}, "one request for the shard's records, not one per item"


def test_a_copy_that_is_missing_corrupt_or_of_another_item_is_read_from_the_record(tmp_path):
    with Registry.open(str(tmp_path / "store"), io_workers=2) as registry:
        ds, index = _dataset_with_shards(registry, 12)
        ids = read_shard(registry.store, index, 0)
        key = layout.shard_records("run-1", 0)
        lines = registry.store.get_bytes(key).decode().splitlines()
        other = registry.get_item(ds.id, read_shard(registry.store, index, 1)[0]).to_json()
        tampered = ["{not json", other, "{}", *lines[3:5]]  # then the file ends early: ids[5] on have no copy
        registry.store.put_bytes(key, ("\n".join(tampered) + "\n").encode())
        registry.store.delete(layout.item_record(ds.id, ids[4]))  # its copy is fine: the copy is used
        registry.store.delete(layout.item_record(ds.id, ids[5]))  # no copy, no record: a failure by name
        out, counts = _read_through_a_counter(registry, ds, ids, key)
        assert [i for i, _ in out] == ids
        assert isinstance(out[5][1], NotFoundError)
        good = [n for n in range(len(ids)) if n != 5]
        assert all(out[n][1].id == ids[n] and out[n][1].metadata["i"] == int(out[n][1].path[:2]) for n in good)
        assert counts == {"get": 1 + 3 + (len(ids) - 5)}, "the copies file, then one GET per id without a usable copy"

        gone, counts = _read_through_a_counter(registry, ds, read_shard(registry.store, index, 1), layout.shard_records("run-2", 1))
        assert [item.id for _, item in gone] == read_shard(registry.store, index, 1) and counts == {"get": 1 + 6}
