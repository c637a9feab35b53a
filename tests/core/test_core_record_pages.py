"""Item records listed a page at a time (``registry/record_pages.py``), and the store requests a prediction costs.

Pages are a cache beside the records: every listing must give exactly what reading each
record would, whatever was added, changed, deleted or broken since the pages were written.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter_base import Registry
from adapter_base.prediction.deletion import CHECK_INTERVAL_S
from adapter_base.registry import layout, record_pages
from adapter_base.storage import LocalStore
from adapter_base.storage.counting import CountingStore
from core_support import MetadataAdapter, png_bytes


def truth(registry: Registry, ds) -> dict[str, tuple]:
    """Every item as reading each record on its own gives it."""
    prefix = layout.item_records_prefix(ds.id)
    out = {}
    for obj in registry.store.list(prefix):
        item = registry.get_item(ds.id, obj.key[len(prefix) : -len(".json")])
        out[item.id] = (item.path, tuple(item.subsets), item.metadata)
    return out


def listed(registry: Registry, ds) -> dict[str, tuple]:
    return {it.id: (it.path, tuple(it.subsets), it.metadata) for it in registry.iter_items(ds)}


def pages_of(registry: Registry, ds) -> list[str]:
    prefix = layout.record_pages_prefix(ds.id)
    return [o.key[len(prefix) :] for o in registry.store.list(prefix)]


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(record_pages, "PAGE_SIZE", 4)


def test_a_second_listing_reads_pages_not_records(registry, small_pages):
    ds = registry.create_dataset("paged")
    for i in range(30):
        registry.add_item(ds, f"{i:03d}.txt", b"x", item_id=f"i{i:03d}", subsets=["train"] if i % 2 else ["test"])
    counting = CountingStore(registry.store)
    reader = Registry(counting, io_workers=2)
    try:
        cold = listed(reader, ds)
        assert cold == truth(registry, ds)
        assert counting.snapshot()["get"] == 30, "the first listing reads every record once"
        assert len(pages_of(registry, ds)) >= 30 // (2 * 4), "and writes pages of copies"
        counting.reset()
        assert listed(reader, ds) == cold
        gets = counting.snapshot().get("get", 0)
        assert gets == len(pages_of(registry, ds)) < 30, f"a warm listing reads its pages only, got {counting.snapshot()}"
        assert [it.id for it in reader.iter_items(ds, {"subset": "train"})] == [f"i{i:03d}" for i in range(1, 30, 2)]
    finally:
        reader.pool.shutdown(wait=True)


def test_changes_since_the_pages_were_written_are_listed(registry, small_pages):
    ds = registry.create_dataset("changing")
    items = [registry.add_item(ds, f"{i:03d}.txt", b"x", item_id=f"i{i:03d}") for i in range(20)]
    listed(registry, ds)  # writes the pages
    items[3].subsets = ["train"]
    items[3].metadata = {"changed": 1}
    registry.update_item(items[3])
    items[4].subsets = ["valid"]  # same record size as before: only the etag tells
    registry.update_item(items[4])
    for i in (0, 9, 10, 11, 12, 19):  # the first of a page, a whole page, the last
        registry.store.delete(layout.item_record(ds.id, f"i{i:03d}"))
    registry.add_item(ds, "a.txt", b"y", item_id="a000")  # before every page
    registry.add_item(ds, "z.txt", b"y", item_id="i0105")  # between two copies
    registry.store.put_bytes(layout.item_record(ds.id, "i005"), b"{not json")
    want = truth_without(registry, ds, "i005")
    for _ in range(2):  # the listing that sees the changes, then the one reading the pages it rewrote
        results = dict(registry.iter_item_results(ds))
        assert list(results) == truth_ids_of(registry, ds)
        assert isinstance(results.pop("i005"), Exception)
        assert {k: (v.path, tuple(v.subsets), v.metadata) for k, v in results.items()} == want
        assert results["i003"].metadata == {"changed": 1} and results["i004"].subsets == ["valid"]


def truth_ids_of(registry: Registry, ds) -> list[str]:
    prefix = layout.item_records_prefix(ds.id)
    return [o.key[len(prefix) : -len(".json")] for o in registry.store.list(prefix)]


def truth_without(registry: Registry, ds, broken: str) -> dict[str, tuple]:
    out = {}
    for item_id in truth_ids_of(registry, ds):
        if item_id != broken:
            item = registry.get_item(ds.id, item_id)
            out[item_id] = (item.path, tuple(item.subsets), item.metadata)
    return out


def test_a_broken_or_forged_page_costs_requests_not_correctness(registry, small_pages):
    ds = registry.create_dataset("broken-pages")
    for i in range(12):
        registry.add_item(ds, f"{i:03d}.txt", b"x", item_id=f"i{i:03d}", metadata={"n": i})
    want = listed(registry, ds)
    first, second = pages_of(registry, ds)[:2]
    registry.store.put_bytes(layout.record_page(ds.id, first), b"\x00garbage\n[1,2]\n")
    # A copy with an etag no record has is never served; a copy that is not a JSON object is no copy.
    third_etag = next(o.etag for o in registry.store.list(layout.item_records_prefix(ds.id)) if o.key.endswith(second))
    forged = b'{"dataset_id":"%s","path":"evil.txt","mimetype":"text/plain","id":"i999"}' % ds.id.encode()
    registry.store.put_bytes(
        layout.record_page(ds.id, second), b"%s\tforged\t%s\n%s\t%s\t[1]\n" % (second.encode(), forged, second.encode(), third_etag.encode())
    )
    assert listed(registry, ds) == want
    assert listed(registry, ds) == want


def test_a_read_only_store_still_lists(tmp_path, small_pages, caplog):
    class ReadOnly(LocalStore):
        def put_bytes(self, key, data, content_type=None):
            if "/record-pages/" in key:
                raise PermissionError(f"read-only: {key}")
            super().put_bytes(key, data, content_type)

    with Registry(ReadOnly(tmp_path / "s"), io_workers=2) as registry:
        ds = registry.create_dataset("ro")
        for i in range(9):
            registry.add_item(ds, f"{i}.txt", b"x")
        assert listed(registry, ds) == truth(registry, ds) == listed(registry, ds)
        assert pages_of(registry, ds) == []
    assert "could not write record page" in caplog.text


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 40)),
        st.tuples(st.just("update"), st.integers(0, 40), st.sampled_from(["a", "b", "ab", "ba"])),
        st.tuples(st.just("delete"), st.integers(0, 40)),
        st.tuples(st.just("list")),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_history_of_adds_updates_and_deletes_lists_like_the_records(tmp_path_factory, ops):
    record_pages.PAGE_SIZE, saved = 3, record_pages.PAGE_SIZE
    try:
        with Registry(LocalStore(tmp_path_factory.mktemp("h")), io_workers=2) as registry:
            ds = registry.create_dataset("h")
            for op in ops:
                item_id = f"i{op[1]:03d}" if len(op) > 1 else ""
                key = layout.item_record(ds.id, item_id) if item_id else ""
                if op[0] == "add" and not registry.store.exists(key):
                    registry.add_item(ds, f"{item_id}.txt", b"x", item_id=item_id)
                elif op[0] == "update" and registry.store.exists(key):
                    item = registry.get_item(ds.id, item_id)
                    item.subsets = [op[2]]
                    registry.update_item(item)
                elif op[0] == "delete":
                    registry.store.delete(key)
                elif op[0] == "list":
                    assert listed(registry, ds) == truth(registry, ds)
            assert listed(registry, ds) == truth(registry, ds) == listed(registry, ds)
    finally:
        record_pages.PAGE_SIZE = saved


def test_predict_dataset_costs_two_requests_per_item_plus_the_listing(registry):
    """Target 4 of issue 15: the binary read and the prediction write per item; records come in pages."""
    n = 24
    ds = registry.create_dataset("per-item")
    for i in range(n):
        registry.add_item(ds, f"{i:03d}.png", png_bytes(i), metadata={"pred": "cat"})
    listed(registry, ds)  # the pages exist, as after any earlier listing
    counting = CountingStore(registry.store)
    reader = Registry(counting, io_workers=4)
    try:
        adapter = MetadataAdapter(registry=reader)
        # read and write on the threads: worker processes open the store anew, where this wrapper cannot count their requests
        adapter.load_from_model(reader.create_model("per-item", configuration={"prepare_in_processes": False, "write_in_processes": False}))
        counting.reset()
        started = time.monotonic()
        report = adapter.predict_dataset(ds, batch_size=4)
        took = time.monotonic() - started
        assert report.succeeded == n, report.summary()
        counts = counting.snapshot()
        # two listings (records, pages), one page, the report; then per item one binary GET and one PUT
        assert counts["get"] == n + 1 and counts["put"] == n + 1, counts
        # and whether the model still exists: at the end, and at most once every CHECK_INTERVAL_S before (a slow
        # run on a busy machine makes more of those; they are per second, not per item)
        assert counts.get("stat", 0) <= 2 + took / CHECK_INTERVAL_S, (counts, took)
        assert counting.requests - counts.get("stat", 0) <= 2 * n + 4, counts
    finally:
        reader.pool.shutdown(wait=True)
