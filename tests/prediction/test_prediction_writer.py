"""``ResultWriter``: results reach the collector at once and the store on a bounded pool; each outcome is reported."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

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


class FakeRemote:
    """A ``WriteProcess`` stand-in: stores each chunk on a thread of its own, noting its size; can fail to take them."""

    def __init__(self, store) -> None:
        self.store = store
        self.chunks: list[int] = []
        self.refuse = False

    def submit(self, chunk):
        if self.refuse:
            raise RuntimeError("its processes are gone")
        self.chunks.append(len(chunk))
        fut: Future = Future()

        def run() -> None:
            fut.set_result([self.store(item, pset) for item, pset in chunk])

        threading.Thread(target=run, daemon=True).start()
        return fut

    def discard(self) -> None:
        pass


def test_each_batch_goes_to_the_processes_or_the_threads_as_the_route_says(tmp_path):
    """With a ``route``, a flushed batch's records go to the write processes only where it is true when flushed,
    in chunks of ``remote_chunk``; the threads take the others in chunks of ``chunk``; every item's outcome comes back."""
    with Registry(LocalStore(tmp_path / "store"), io_workers=2) as registry:
        results = items_and_sets(registry, 48)
        here: list[str] = []

        def store(item: Item, pset: PredictionSet) -> None:
            if threading.current_thread().name.startswith("write"):
                here.append(item.id)
            registry.put_predictions(pset, item.dataset_id)

        remote = FakeRemote(store)
        busy = [True]
        outcomes = Outcomes()
        writer = ResultWriter(store, collect=None, workers=2, chunk=4, on_written=outcomes, backlog=16, remote=remote, remote_chunk=16, route=lambda: busy[0])
        for n, start in enumerate(range(0, 48, 16)):
            busy[0] = n != 1  # the second batch while predict is not busy
            remote.refuse = n == 2  # the third: the processes are gone, so it is written here
            for item, pset in results[start : start + 16]:
                writer.accept(item, pset)
            writer.flush()
        writer.close()  # returns: every place in the backlog came back
        assert remote.chunks == [16]
        assert sorted(here) == sorted(it.id for it, _ in results[16:])
        assert outcomes.seen == {it.id: None for it, _ in results}


def test_predict_s_cpu_is_told_from_the_thread_it_ran_on():
    """``call_predict`` tells how much CPU the call took on its own thread (also on the deadline's thread): a predict
    that computes is busy, one that waits on a device is not."""
    from adapter_base.prediction.contract import call_predict
    from adapter_base.prediction.writer import PredictShare

    class Model:
        def __init__(self, compute: bool) -> None:
            self.compute = compute

        def predict(self, batch, **kwargs):
            start = time.thread_time()
            while self.compute and time.thread_time() - start < 0.2:
                pass
            if not self.compute:
                time.sleep(0.2)
            return [[] for _ in batch]

    item = Item(dataset_id="d", path="a.txt", mimetype="text/plain")
    for timeout_s in (None, 30.0):
        told: list[tuple[float, float]] = []
        call_predict(Model(True), [1], [item], timeout_s, on_cpu=lambda cpu, wall: told.append((cpu, wall)))
        call_predict(Model(False), [1], [item], timeout_s, on_cpu=lambda cpu, wall: told.append((cpu, wall)))
        (busy_cpu, busy_wall), (idle_cpu, idle_wall) = told
        assert busy_cpu >= 0.2 and busy_wall >= 0.2
        assert idle_cpu < 0.05 and idle_wall >= 0.2
    share = PredictShare()
    assert not share.busy() and share.share() == 0.0  # no call yet
    share.add(0.9, 1.0)  # the first call: counted from its start
    assert 0.6 < share.share() <= 0.9 and share.busy()  # 0.9 s of the 1 s since the call began, and what passed since
    idle = PredictShare()
    idle.add(0.01, 1.0)  # waited on a device
    assert idle.share() < 0.05 and not idle.busy()
    crowded = PredictShare()
    crowded.add(0.35, 1.0)  # computed, but had a CPU a third of the time: reads, writes and an S3 server on 2 CPUs
    assert crowded.busy()
    waiting = PredictShare()
    waiting.add(0.15, 1.0)  # a device wait with some work around it
    assert not waiting.busy()
