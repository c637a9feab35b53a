"""``ResultWriter``: results reach the collector at once and the store on a bounded pool; each outcome is reported."""

from __future__ import annotations

import threading
import time

from adapter_base import Annotation, Item, PredictionSet, Registry
from adapter_base.prediction.contract import stamp
from adapter_base.prediction.writer import ResultWriter, registry_store
from adapter_base.storage import LocalStore


def items_and_sets(registry: Registry, n: int) -> list[tuple[Item, PredictionSet]]:
    ds = registry.create_dataset("d", labels=["a"])
    model = registry.create_model("m")
    out = []
    for i in range(n):
        item = registry.add_item(ds, f"{i}.txt", b"x")
        out.append((item, stamp(model, "run", item, [Annotation.classification("a", confidence=0.5)])))
    return out


class Outcomes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, BaseException | None] = {}

    def __call__(self, items, errors) -> None:
        with self.lock:
            self.seen.update({it.id: e for it, e in zip(items, errors)})


def test_results_are_collected_at_once_and_stored_by_close(tmp_path):
    with Registry(LocalStore(tmp_path / "store"), io_workers=2) as registry:
        results = items_and_sets(registry, 9)
        collected: list[str] = []
        outcomes = Outcomes()
        writer = ResultWriter(registry_store(registry), collect=lambda it, _: collected.append(it.id), workers=2, chunk=4, on_written=outcomes)
        for item, pset in results:
            writer.accept(item, pset)
        assert collected == [it.id for it, _ in results] and outcomes.seen == {}  # nothing stored before flush
        writer.flush()
        writer.close()
        assert outcomes.seen == {it.id: None for it, _ in results}
        for item, pset in results:
            assert registry.get_predictions(item, pset.model_id) == pset


def test_a_failed_write_fails_its_item_only(tmp_path):
    with Registry(LocalStore(tmp_path / "store"), io_workers=2) as registry:
        results = items_and_sets(registry, 6)
        bad = results[2][0].id

        def store(item: Item, pset: PredictionSet) -> None:
            if item.id == bad:
                raise OSError("disk full")
            registry.put_predictions(pset, item.dataset_id)

        outcomes = Outcomes()
        writer = ResultWriter(store, collect=None, workers=2, chunk=4, on_written=outcomes)
        for item, pset in results:
            writer.accept(item, pset)
        writer.flush()
        writer.close()
        assert isinstance(outcomes.seen.pop(bad), OSError)
        assert outcomes.seen == {it.id: None for it, _ in results if it.id != bad}


def test_writes_in_flight_are_bounded_and_flush_waits_for_room(tmp_path):
    with Registry(LocalStore(tmp_path / "store"), io_workers=1) as registry:
        results = items_and_sets(registry, 12)
    gate = threading.Event()
    started: list[str] = []

    def slow_store(item: Item, pset: PredictionSet) -> None:
        started.append(item.id)
        gate.wait(10)

    outcomes = Outcomes()
    writer = ResultWriter(slow_store, collect=None, workers=1, chunk=1, on_written=outcomes)  # at most 4 tasks in flight
    flushed = threading.Event()

    def produce() -> None:
        for item, pset in results:
            writer.accept(item, pset)
        writer.flush()
        flushed.set()

    threading.Thread(target=produce, daemon=True).start()
    time.sleep(0.3)
    assert not flushed.is_set() and len(started) == 1  # one worker busy, the flush waits for room
    gate.set()
    assert flushed.wait(10)
    writer.close()
    assert len(outcomes.seen) == 12 and set(outcomes.seen.values()) == {None}


def test_without_a_store_items_count_as_written_on_flush():
    outcomes = Outcomes()
    writer = ResultWriter(None, collect=None, workers=1, chunk=4, on_written=outcomes)
    item = Item(dataset_id="d", path="a.txt", mimetype="text/plain")
    writer.accept(item, PredictionSet(item_id=item.id, model_id="m", model_name="m", model_version=0, annotations=[]))
    writer.flush()
    assert outcomes.seen == {item.id: None}
    writer.close()


def test_flush_waits_only_once_the_backlog_is_full(tmp_path):
    """A batch handed over while the store is slow does not hold ``predict`` up until the backlog of
    items waiting or being written is full; then ``flush`` waits for the store."""
    with Registry(LocalStore(tmp_path / "store"), io_workers=2) as registry:
        results = items_and_sets(registry, 48)
        release = threading.Event()

        def slow_store(item: Item, pset: PredictionSet) -> None:
            release.wait(30)
            registry.put_predictions(pset, item.dataset_id)

        outcomes = Outcomes()
        writer = ResultWriter(slow_store, collect=None, workers=1, chunk=4, on_written=outcomes, backlog=32)

        def flush_batch(batch: list[tuple[Item, PredictionSet]]) -> threading.Thread:
            for item, pset in batch:
                writer.accept(item, pset)
            flusher = threading.Thread(target=writer.flush, daemon=True)
            flusher.start()
            flusher.join(5)
            return flusher

        assert not flush_batch(results[:16]).is_alive()  # 16 of 32 in the backlog: handed over at once
        assert not flush_batch(results[16:32]).is_alive()  # 32 of 32
        waiting = flush_batch(results[32:])  # more than the backlog: waits for the store
        assert waiting.is_alive()
        release.set()
        waiting.join(30)
        writer.close()
        assert outcomes.seen == {it.id: None for it, _ in results}
