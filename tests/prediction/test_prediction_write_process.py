"""Records stored from a worker process (``write_process``): the same sets, each item's own outcome, nothing lost
when the process dies; and the predicted batches let go of on a thread of their own (``batch_release``)."""

from __future__ import annotations

import dataclasses
import os
import time
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapter_base import AnnotationCollection, BaseModelAdapter, Registry
from adapter_base.errors import StoreError
from adapter_base.prediction.batch_release import BatchRelease
from adapter_base.prediction.pools import cpu_count, reopenable
from adapter_base.prediction.write_process import portable
from adapter_base.storage import LocalStore
from adapter_base.storage.counting import CountingStore

pytestmark = pytest.mark.skipif(cpu_count() < 2, reason="records are written from a process by default on 2 CPUs or more")


class Noting(LocalStore):
    """A local store whose prediction writes note the process making them, and can fail or end that process.

    ``reopened`` keeps the class: a worker's copy behaves as this one does.
    """

    parent = os.getpid()
    doomed: str | None = None  # a key whose write raises
    exit_after: int | None = None  # a worker process ends on its n-th prediction write

    def reopened(self) -> "Noting":
        return Noting(self.root, create=False)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        if "/predictions/" in key:
            if key == Noting.doomed:
                raise StoreError(f"injected failure writing {key}")
            with open(self.root / f"writers-{os.getpid()}", "a") as fh:
                fh.write(key + "\n")
            if Noting.exit_after is not None and os.getpid() != Noting.parent:
                if len((self.root / f"writers-{os.getpid()}").read_text().splitlines()) >= Noting.exit_after:
                    os._exit(1)  # the writing process dies mid-run
        super().put_bytes(key, data, content_type)


def writers(root: Path) -> dict[int, int]:
    """Prediction writes per process id."""
    return {int(p.name.split("-")[1]): len(p.read_text().splitlines()) for p in root.glob("writers-*")}


class Labeler(BaseModelAdapter):
    def load(self, local_path: str, **kwargs: Any) -> None:
        pass

    def save(self, local_path: str, **kwargs: Any) -> None:
        pass

    def prepare_item_func(self, item: Any) -> Any:
        return item.path

    def predict(self, batch: Any, **kwargs: Any) -> list[AnnotationCollection]:
        out = []
        for path in batch:
            coll = AnnotationCollection()
            coll.add_box(1.0, 2.0, 3.0, 4.0, f"label-{path}", confidence=0.5)
            out.append(coll)
        return out


@pytest.fixture(autouse=True)
def reset_noting():
    yield
    Noting.doomed = Noting.exit_after = None


def predict(registry: Registry, ds: Any, **config: Any) -> tuple[Any, Any]:
    model = registry.create_model(f"m-{uuid.uuid4().hex[:8]}", labels=["a"], configuration={"batch_size": 4, **config})
    adapter = Labeler(registry=registry)
    adapter.load_from_model(model)
    return model, adapter.predict_dataset(ds)


def dataset(registry: Registry, n: int) -> Any:
    ds = registry.create_dataset("d", labels=["a"])
    for i in range(n):
        registry.add_item(ds, f"{i:02d}.txt", b"x")
    return ds


def labels(registry: Registry, ds: Any, model: Any) -> dict[str, list[tuple[str, list[float], str]]]:
    out = {}
    for item in registry.iter_items(ds):
        pset = registry.get_predictions(item, model.id)
        out[item.path] = [(a.label, a.coordinates, a.model.model_id) for a in pset.annotations]
    return out


def test_records_are_stored_from_a_worker_process_and_match_the_threads(tmp_path):
    store = Noting(tmp_path / "store")
    with Registry(store) as registry:
        ds = dataset(registry, 10)
        m_proc, r_proc = predict(registry, ds)
        by_process = writers(store.root)
        for f in store.root.glob("writers-*"):
            f.unlink()
        m_threads, r_threads = predict(registry, ds, write_in_processes=False)
        assert r_proc.succeeded == r_threads.succeeded == 10
        assert os.getpid() not in by_process and sum(by_process.values()) == 10  # every set, from another process
        assert writers(store.root) == {os.getpid(): 10}  # forced off: from this process
        proc, threads = labels(registry, ds, m_proc), labels(registry, ds, m_threads)
        assert {k: [(lbl, c) for lbl, c, _ in v] for k, v in proc.items()} == {k: [(lbl, c) for lbl, c, _ in v] for k, v in threads.items()}
        assert all(mid == m_proc.id for v in proc.values() for _, _, mid in v)


def test_a_write_failing_in_the_process_fails_its_item_only(tmp_path):
    store = Noting(tmp_path / "store")
    with Registry(store) as registry:
        ds = dataset(registry, 8)
        items = list(registry.iter_items(ds))
        model = registry.create_model("doomed", labels=["a"], configuration={"batch_size": 4})
        from adapter_base.registry import layout

        Noting.doomed = layout.predictions(ds.id, items[3].id, model.id, model.version)
        adapter = Labeler(registry=registry)
        adapter.load_from_model(model)
        report = adapter.predict_dataset(ds)
        assert report.succeeded == 7 and report.failed == 1
        (failure,) = report.failures
        assert failure.item_id == items[3].id and failure.stage == "write" and "injected failure writing" in failure.error
        assert os.getpid() not in writers(store.root)
        assert registry.get_predictions(items[3], model.id) is None


def test_nothing_is_lost_when_the_writing_process_dies(tmp_path):
    """The chunks it had not stored are written by this process's threads, and so is the rest of the run."""
    store = Noting(tmp_path / "store")
    with Registry(store) as registry:
        ds = dataset(registry, 40)
        Noting.exit_after = 6
        model, report = predict(registry, ds)
        assert report.ok and report.succeeded == 40, report.summary()
        seen = writers(store.root)
        assert seen.get(os.getpid(), 0) >= 40 - 6  # this process took over
        assert len(labels(registry, ds, model)) == 40
        Noting.exit_after = None
        _, again = predict(registry, ds)  # the next run forks a new writing process
        assert again.succeeded == 40


def test_a_store_that_changes_its_writes_but_not_reopened_keeps_them_here(tmp_path):
    class Audited(LocalStore):  # inherits LocalStore.reopened, whose copy would be a plain LocalStore
        def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
            super().put_bytes(key, data, content_type)

    assert reopenable(LocalStore(tmp_path / "a")) and reopenable(Noting(tmp_path / "b"))
    assert not reopenable(Audited(tmp_path / "c"))
    assert reopenable(CountingStore(LocalStore(tmp_path / "d")))  # its own reopened: the workers' requests go uncounted
    wrapped = LocalStore(tmp_path / "e")
    wrapped.put_bytes = lambda key, data, content_type=None: LocalStore.put_bytes(wrapped, key, data, content_type)  # type: ignore[method-assign]
    assert not reopenable(wrapped)  # replaced on the object: a worker's copy would not have it


class Picky(Exception):
    def __init__(self, *, code: int) -> None:  # cannot be rebuilt from its args in another process
        super().__init__(f"code {code}")


def test_an_error_goes_back_as_itself_or_as_its_text():
    assert isinstance(portable(OSError(28, "No space left on device")), OSError)
    assert isinstance(portable(StoreError("x")), StoreError)
    sent = portable(Picky(code=7))
    assert type(sent) is StoreError and str(sent) == "Picky: code 7"


def test_batches_are_let_go_of_on_the_releasing_thread_then_their_bytes(tmp_path):
    dropped_on: list[str] = []
    given_back: list[tuple[int, int]] = []

    class Input:
        def __del__(self) -> None:
            dropped_on.append(threading.current_thread().name)

    release = BatchRelease(lambda n: given_back.append((n, len(dropped_on))))
    for held in (10, 20):
        batch = [("item", Input(), 5), ("item", Input(), 5)]
        release.release(batch, held)
        del batch  # whichever reference goes last, the items go on the releasing thread
    release.close()
    assert dropped_on == ["batch-release"] * 4
    assert given_back == [(10, 2), (20, 4)]  # each batch's bytes only once its items are gone


class Computing(Labeler):
    """Keeps its thread on the CPU for ``work_s`` a batch (a model on this machine's CPU), or waits as long (on a device)."""

    compute = True
    work_s = 0.05

    def predict(self, batch: Any, **kwargs: Any) -> list[AnnotationCollection]:
        start = time.thread_time()
        if self.compute:
            while time.thread_time() - start < self.work_s:
                pass
        else:
            time.sleep(self.work_s)
        return super().predict(batch)


def test_records_follow_predict_to_the_processes_only_while_it_keeps_the_cpu_busy(tmp_path, monkeypatch):
    """How a run on S3 stores by default (``Pools.writes_follow_predict``): the write processes take the records while
    ``predict`` computes on this process's CPU, the write threads here while it waits on a device."""
    from adapter_base.prediction import engine

    planned = engine.plan_pools
    monkeypatch.setattr(engine, "plan_pools", lambda *a, **k: dataclasses.replace(planned(*a, **k), writes_follow_predict=True))
    store = Noting(tmp_path / "store")
    with Registry(store) as registry:
        ds = dataset(registry, 24)
        for compute in (True, False):
            for f in store.root.glob("writers-*"):
                f.unlink()
            model = registry.create_model(f"m-{compute}", labels=["a"], configuration={"batch_size": 4})
            adapter = Computing(registry=registry)
            adapter.compute = compute
            adapter.load_from_model(model)
            report = adapter.predict_dataset(ds)
            assert report.ok and report.succeeded == 24, report.summary()
            by_process = writers(store.root)
            assert sum(by_process.values()) == 24 and len(labels(registry, ds, model)) == 24
            if compute:
                assert by_process.get(os.getpid(), 0) <= 8  # the first batches' at most, while predict's share builds up
            else:
                assert by_process == {os.getpid(): 24}
