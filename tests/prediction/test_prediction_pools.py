"""Pools sized for the machine and the store; images decoded in worker processes give what the threads give.

Real PNG/JPEG bytes, a real local store, real worker processes and shared memory.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from adapter_base import AnnotationCollection, BaseModelAdapter, PredictionOptions, Registry
from adapter_base.entities import Annotation
from adapter_base.prediction.decoders import ProcessDecoder, block_prefix
from adapter_base.prediction.pools import Pools, plan_pools, uses_default_prepare
from adapter_base.errors import ValidationError
from adapter_base.storage import LocalStore


class FakeS3:
    uri = "s3://bucket/prefix"

    def reopened(self) -> "FakeS3":
        return FakeS3()


LOCAL = LocalStore.__new__(LocalStore)
LOCAL.uri = "file:///tmp/x"


@pytest.mark.parametrize(
    ("cpus", "store", "default_prepare", "expected"),
    [
        # the default prepare on a store a worker can reopen: whole batches read and decoded in processes
        (2, LOCAL, True, Pools(prepare_threads=1, decode_processes=0, write_threads=2, batch_processes=2, write_processes=1)),
        (2, LOCAL, False, Pools(prepare_threads=2, decode_processes=0, write_threads=2, write_processes=1)),
        (1, LOCAL, True, Pools(prepare_threads=1, decode_processes=0, write_threads=2)),
        (4, LOCAL, True, Pools(prepare_threads=1, decode_processes=0, write_threads=2, batch_processes=4, write_processes=1)),
        (4, LOCAL, False, Pools(prepare_threads=4, decode_processes=0, write_threads=2, write_processes=1)),
        (64, LOCAL, True, Pools(prepare_threads=1, decode_processes=0, write_threads=2, batch_processes=8, write_processes=1)),
        # 16 reads in flight; the write processes take the records while predict keeps the CPU busy
        (2, FakeS3(), True, Pools(prepare_threads=1, decode_processes=0, write_threads=16, batch_processes=2, fetch_threads=8, write_processes=2, writes_follow_predict=True)),
        (2, FakeS3(), False, Pools(prepare_threads=16, decode_processes=0, write_threads=16, write_processes=2, writes_follow_predict=True)),  # many requests in flight
        (8, FakeS3(), False, Pools(prepare_threads=16, decode_processes=0, write_threads=16, write_processes=2, writes_follow_predict=True)),
        (1, FakeS3(), True, Pools(prepare_threads=16, decode_processes=0, write_threads=16)),
    ],
)
def test_automatic_sizes_follow_the_cpus_and_the_store(cpus, store, default_prepare, expected):
    unbudgeted = PredictionOptions(prepared_bytes_budget=None)
    assert plan_pools(unbudgeted, store, default_prepare=default_prepare, cpus=cpus) == expected


@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_writes_in_processes_follow_the_setting_the_store_and_the_cpus(cpus):
    """Records are stored from a worker process on 2 CPUs or more on a local store a worker can reopen; on S3 two
    processes are there, taking the records only while predict keeps the CPU busy (the write threads mostly wait on
    the network); the setting forces either way, with two processes on S3 taking every record."""
    auto, on, off = PredictionOptions(), PredictionOptions(write_in_processes=True), PredictionOptions(write_in_processes=False)
    assert plan_pools(auto, LOCAL, default_prepare=False, cpus=cpus).write_processes == (1 if cpus >= 2 else 0)
    assert not plan_pools(auto, LOCAL, default_prepare=False, cpus=cpus).writes_follow_predict
    s3_auto = plan_pools(auto, FakeS3(), default_prepare=True, cpus=cpus)
    assert (s3_auto.write_processes, s3_auto.writes_follow_predict) == ((2, True) if cpus >= 2 else (0, False))
    assert plan_pools(on, FakeS3(), default_prepare=True, cpus=cpus).write_processes == 2
    assert not plan_pools(on, FakeS3(), default_prepare=True, cpus=cpus).writes_follow_predict
    assert plan_pools(on, LOCAL, default_prepare=True, cpus=cpus).write_processes == 1
    assert plan_pools(off, FakeS3(), default_prepare=True, cpus=cpus).write_processes == 0
    not_reopenable = type("Elsewhere", (), {"uri": "s3://bucket/x"})()
    assert plan_pools(on, not_reopenable, default_prepare=True, cpus=cpus).write_processes == 0
    with pytest.raises(ValidationError, match="write_in_processes"):
        PredictionOptions.from_configuration({"write_in_processes": "sometimes"})


@pytest.mark.parametrize("cpus", [1, 2, 4, 64])
@pytest.mark.parametrize("store", [LOCAL, FakeS3()])
def test_a_byte_budget_reads_in_processes_too(cpus, store):
    """Each read in a worker reserves what it may hold in ``prepared_bytes_budget`` (``batch_feed``): with a budget
    (the default) the automatic choice still reads in processes where there are 2 CPUs or more."""
    assert plan_pools(PredictionOptions(), store, default_prepare=True, cpus=cpus).batch_processes == (min(cpus, 8) if cpus >= 2 else 0)
    assert plan_pools(PredictionOptions(prepare_in_processes=False), store, default_prepare=True, cpus=cpus).batch_processes == 0


def test_whole_batches_in_processes_follow_the_setting_the_store_and_resuming():
    on, off = PredictionOptions(prepare_in_processes=True), PredictionOptions(prepare_in_processes=False)
    assert plan_pools(off, LOCAL, default_prepare=True, cpus=2) == Pools(prepare_threads=2, decode_processes=0, write_threads=2, write_processes=1)
    assert plan_pools(on, LOCAL, default_prepare=True, cpus=1).batch_processes == 1  # forced: even on one CPU
    assert plan_pools(PredictionOptions(), LOCAL, default_prepare=True, cpus=2, resume=True).batch_processes == 0
    assert plan_pools(on, LOCAL, default_prepare=True, cpus=2, resume=True).batch_processes == 2
    assert plan_pools(on, LOCAL, default_prepare=False, cpus=8).batch_processes == 0  # a custom prepare runs on the threads
    assert plan_pools(on, LOCAL, default_prepare=True, default_read=False, cpus=8).batch_processes == 0  # so does custom item_bytes
    assert plan_pools(PredictionOptions(prepare_in_processes=True, decode_processes=3), FakeS3(), default_prepare=True, cpus=8).batch_processes == 3
    assert plan_pools(on, object(), default_prepare=True, cpus=8).batch_processes == 0  # a store a worker cannot reopen
    with pytest.raises(ValidationError, match="prepare_in_processes"):
        PredictionOptions.from_configuration({"prepare_in_processes": "yes"})


def test_configured_counts_win_and_a_custom_prepare_never_runs_in_processes():
    opts = PredictionOptions.from_configuration({"prepare_workers": 3, "write_workers": 5, "decode_processes": 0})
    assert plan_pools(opts, LOCAL, default_prepare=True, cpus=8) == Pools(prepare_threads=3, decode_processes=0, write_threads=5, write_processes=1)
    opts = PredictionOptions.from_configuration({"decode_processes": 3, "io_workers": 4})
    assert plan_pools(opts, FakeS3(), default_prepare=False, cpus=8) == Pools(
        prepare_threads=4, decode_processes=0, write_threads=4, write_processes=2, writes_follow_predict=True
    )
    assert plan_pools(opts, FakeS3(), default_prepare=True, cpus=1).decode_processes == 3


@pytest.mark.parametrize(("key", "value"), [("prepare_workers", 0), ("write_workers", -1), ("decode_processes", -1), ("decode_processes", "two")])
def test_bad_pool_sizes_name_their_key(key, value):
    with pytest.raises(ValueError, match=rf"configuration\.{key}: must be a whole number"):
        PredictionOptions.from_configuration({key: value})


def png(i: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(i)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def rotated_jpeg() -> bytes:
    """A 40x20 JPEG whose EXIF says "rotate 90": upright it is 20 wide, 40 high."""
    img = Image.fromarray(np.zeros((20, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


class Recorder(BaseModelAdapter):
    """Keeps the default prepare_item_func; records each input it is given (shape, checksum)."""

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.seen: dict[str, Any] = {}

    def save(self, local_path: str, **kwargs: Any) -> None:
        pass

    def predict(self, batch: Any, **kwargs: Any) -> list[AnnotationCollection]:
        time.sleep(self.configuration.get("delay_s", 0))
        out = []
        for x, item in zip(batch, kwargs["items"]):
            self.seen[item.id] = (x.shape, x.dtype.str, int(np.asarray(x, dtype=np.int64).sum())) if isinstance(x, np.ndarray) else x
            coll = AnnotationCollection()
            coll.add_classification("a", confidence=0.5)
            out.append(coll)
        return out


def shm_blocks(pid: int | None = None) -> set[str]:
    """The shared memory blocks of ``pid``'s (this process's) decoding workers that exist now."""
    prefix = block_prefix(pid or os.getpid())
    return {n for n in os.listdir("/dev/shm") if n.startswith(prefix)} if os.path.isdir("/dev/shm") else set()


def run(registry: Registry, ds: Any, **config: Any) -> tuple[Recorder, Any]:
    model = registry.create_model(f"m-{config.get('decode_processes')}-{config.get('prepare_in_processes')}-{uuid.uuid4().hex[:6]}", labels=["a"], configuration=config)
    adapter = Recorder(registry=registry)
    adapter.load_from_model(model)
    assert uses_default_prepare(adapter)
    return adapter, adapter.predict_dataset(ds)


def test_decoding_in_processes_gives_what_the_threads_give(tmp_path):
    with Registry(LocalStore(tmp_path / "store")) as registry:
        ds = registry.create_dataset("d", labels=["a"])
        for i in range(24):
            registry.add_item(ds, f"{i:02d}.png", png(i, mode="RGB" if i % 3 else "L"))
        registry.add_item(ds, "rotated.jpg", rotated_jpeg())
        registry.add_item(ds, "broken.png", b"\x89PNG not really")
        registry.add_item(ds, "odd: name.png", b"not an image")  # ": " in the error's entity: the message must come back whole
        registry.add_item(ds, "huge.png", png(99, size=(400, 400)))
        registry.add_item(ds, "note.txt", b"hello")
        config = {"prepared_bytes_budget": 200_000, "batch_size": 4}
        threads, t_report = run(registry, ds, decode_processes=0, **config)
        procs, p_report = run(registry, ds, decode_processes=2, **config)
    assert t_report.succeeded == p_report.succeeded == 26
    assert procs.seen == threads.seen  # same pixels, shapes and dtypes, text unchanged
    assert procs.seen[next(k for k in procs.seen if procs.seen[k] == "hello")] == "hello"
    assert (40, 20, 3) in [v[0] for v in procs.seen.values() if isinstance(v, tuple)]  # EXIF rotation applied
    # the same per-item failures, with the same messages (a worker's decoding holds two more copies of the file)
    def failures(report):
        return [(f.path, f.stage, re.sub(r"needs [0-9.]+ MiB", "needs N MiB", f.error)) for f in report.failures]

    assert failures(p_report) == failures(t_report)
    assert {f.path for f in p_report.failures} == {"broken.png", "huge.png", "odd: name.png"}
    assert shm_blocks() == set()  # every shared memory block was unlinked


@pytest.mark.slow
def test_whole_batches_read_in_processes_give_what_the_threads_give(store_uri):
    from adapter_base.storage import open_store

    with Registry(open_store(store_uri)) as registry:
        ds = registry.create_dataset("d", labels=["a"])
        for i in range(10):
            registry.add_item(ds, f"{i:02d}.png", png(i, mode="RGB" if i % 3 else "L"))
        registry.add_item(ds, "rotated.jpg", rotated_jpeg())
        registry.add_item(ds, "broken.png", b"\x89PNG not really")
        registry.add_item(ds, "huge.png", png(99, size=(400, 400)))
        registry.add_item(ds, "note.txt", b"hello")
        config = {"prepared_bytes_budget": 200_000, "batch_size": 4}
        threads, t_report = run(registry, ds, prepare_in_processes=False, decode_processes=0, **config)
        batches, b_report = run(registry, ds, prepare_in_processes=True, **config)
    assert t_report.succeeded == b_report.succeeded == 12
    assert batches.seen == threads.seen  # same pixels, shapes and dtypes, text unchanged
    assert (40, 20, 3) in [v[0] for v in batches.seen.values() if isinstance(v, tuple)]  # EXIF rotation applied
    assert sorted((f.path, f.stage) for f in b_report.failures) == [("broken.png", "prepare"), ("huge.png", "prepare")]
    assert [f.error for f in b_report.failures if f.path == "broken.png"] == [f.error for f in t_report.failures if f.path == "broken.png"]
    assert "huge.png" in next(f.error for f in b_report.failures if f.path == "huge.png")
    assert shm_blocks() == set()  # every batch's block was unlinked


def test_reads_in_processes_hold_to_the_byte_budget(tmp_path):
    """Small images first, then larger ones than any seen: the reads that would hold more than they reserved
    leave those for a read of their own; the shared memory in use never exceeds the budget, and every
    item comes out as the threads give it."""
    budget = 6_500_000  # a 600x400 PNG needs 5.5 MiB to decode (into a 0.7 MiB array)
    peak = [0]
    stop = threading.Event()

    def watch_shm() -> None:  # the blocks made and not yet mapped here, and those mapped (unlinked once mapped)
        prefix = block_prefix(os.getpid())
        while not stop.is_set():
            blocks: dict[str, int] = {}
            for name in os.listdir("/dev/shm"):
                if name.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        blocks[name] = os.stat(f"/dev/shm/{name}").st_size
            with open("/proc/self/maps") as maps:
                for line in maps:
                    if f"/dev/shm/{prefix}" in line:
                        start, end = (int(x, 16) for x in line.split()[0].split("-"))
                        blocks[line.split("/dev/shm/")[1].split()[0]] = end - start
            peak[0] = max(peak[0], sum(blocks.values()))
            time.sleep(0.001)

    with Registry(LocalStore(tmp_path / "store")) as registry:
        ds = registry.create_dataset("d", labels=["a"])
        for i in range(16):  # listed first (items are listed by id)
            registry.add_item(ds, f"small-{i:02d}.png", png(i, size=(40, 30)), item_id=f"a-small-{i:02d}")
        for i in range(12):  # 8.6 MB of arrays: more than the budget, were they all read at once
            registry.add_item(ds, f"large-{i:02d}.png", png(100 + i, size=(600, 400)), item_id=f"b-large-{i:02d}")
        registry.add_item(ds, "note.txt", b"hello " * 1000)
        config = {"prepared_bytes_budget": budget, "batch_size": 8, "delay_s": 0.05, "prepare_timeout_s": 10}  # batches wait for predict
        for _ in range(3):  # on the threads, an item's reservation once waited for one decoded before it in the same task
            threads, t_report = run(registry, ds, prepare_in_processes=False, decode_processes=0, **config)
            assert (t_report.succeeded, t_report.failed) == (29, 0), t_report.summary()
        watcher = threading.Thread(target=watch_shm, daemon=True)
        watcher.start()
        try:
            batches, b_report = run(registry, ds, prepare_in_processes=True, **config)
        finally:
            stop.set()
            watcher.join()
    assert (t_report.succeeded, t_report.failed) == (b_report.succeeded, b_report.failed) == (29, 0)
    assert batches.seen == threads.seen
    assert 0 < peak[0] <= budget, f"shared memory held {peak[0]} bytes under a budget of {budget}"
    assert shm_blocks() == set()


def test_a_process_decoded_array_is_a_plain_writable_array():
    arr = ProcessDecoder(1).start().decode_image(png(3), what="x")
    assert type(arr) is np.ndarray and arr.flags.writeable and arr.shape == (30, 40, 3)
    arr[...] = 0  # the adapter may normalise in place


def test_no_shared_memory_block_is_left_or_reported_leaked_at_exit(tmp_path):
    script = f"""
import io, numpy as np
from PIL import Image
from adapter_base.prediction.decoders import ProcessDecoder, block_prefix
buf = io.BytesIO(); Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
dec = ProcessDecoder(2).start()
assert all(dec.decode_image(buf.getvalue()).shape == (8, 8, 3) for _ in range(20))
"""
    script += "import os; print(os.getpid())"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resource_tracker" not in done.stderr and "leaked" not in done.stderr, done.stderr
    assert shm_blocks(int(done.stdout.split()[-1])) == set()


def test_decoding_workers_end_when_their_parent_is_killed(tmp_path):
    # A preempted run is SIGKILLed: its forked decoding workers must not live on as orphans.
    script = """
import os, sys, time
from adapter_base.prediction.decoders import ProcessDecoder, _shared_pool
ProcessDecoder(2).start()
print(" ".join(str(pid) for pid in _shared_pool(2)._processes), flush=True)
time.sleep(300)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "a decoding worker outlived its killed parent"


def test_reading_workers_run_below_the_predicting_process(tmp_path):
    """The workers yield the CPUs to the thread calling ``predict`` and the writers when all are busy."""
    import psutil

    from adapter_base.prediction.batch_reader import BatchReader
    from adapter_base.processes import WORKER_NICENESS

    from adapter_base.prediction import batch_reader

    BatchReader(LocalStore(tmp_path / "store"), 2).start()
    workers = [psutil.Process(pid) for pid in batch_reader._POOL.current._processes]
    expected = min(19, psutil.Process().nice() + WORKER_NICENESS)
    # Both are forked by start(); one may not have run its initializer yet (the first worker up can take both
    # start-up tasks), and it does before it takes any read.
    deadline = time.monotonic() + 10
    while not all(w.nice() == expected for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) == 2 and [w.nice() for w in workers] == [expected, expected]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_engine_validates_each_annotation_once(tmp_path, monkeypatch):
    calls = []
    original = Annotation.validate

    def counting(self: Annotation) -> None:
        calls.append(self.id)
        original(self)

    with Registry(LocalStore(tmp_path / "store")) as registry:
        ds = registry.create_dataset("d", labels=["a"])
        for i in range(5):
            registry.add_item(ds, f"{i}.png", png(i))
        model = registry.create_model("m", labels=["a"])
        adapter = Recorder(registry=registry)
        adapter.load_from_model(model)
        monkeypatch.setattr(Annotation, "validate", counting)
        report = adapter.predict_dataset(ds)
    assert report.succeeded == 5
    # one at construction (add_classification), one when stamped; none when stored (was four)
    assert len(calls) == 2 * 5


@pytest.mark.s3
def test_workers_read_the_store_the_run_was_given_not_the_environments(s3_server, monkeypatch):
    """A store built in code (endpoint and keys as arguments) is what the reading workers open again, whatever
    ``AWS_*`` says: here the environment names no server at all, so reading from it would fail every item."""
    from adapter_base.storage.s3 import S3Store

    env = s3_server.env()
    s3_server.make_bucket("pools-reopen")
    store = S3Store(
        "pools-reopen", f"t-{uuid.uuid4().hex[:8]}", endpoint=env["AWS_ENDPOINT_URL"], access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"], path_style=True,
    )  # fmt: skip
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with Registry(store) as registry:
        ds = registry.create_dataset("d", labels=["a"])
        for i in range(6):
            registry.add_item(ds, f"{i}.png", png(i))
        batches, report = run(registry, ds, prepare_in_processes=True, batch_size=4)
    assert (report.succeeded, report.failed) == (6, 0), report.summary()
    assert len(batches.seen) == 6


def test_a_run_stopped_early_leaves_no_read_block_behind(tmp_path):
    """Reads in flight when a run stops (here: every batch fails, so it stops after three) are freed,
    those back already and those still in a worker alike: nothing is left or reported leaked at exit."""
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_prediction_pools import Recorder, png, run
from adapter_base import Registry
from adapter_base.storage import LocalStore

class Boom(Recorder):
    def predict(self, batch, **kwargs):
        raise RuntimeError("boom")

with Registry(LocalStore({str(tmp_path / "store")!r})) as registry:
    ds = registry.create_dataset("d", labels=["a"])
    for i in range(120):
        registry.add_item(ds, f"{{i}}.png", png(i))
    model = registry.create_model("boom", labels=["a"], configuration={{"batch_size": 4, "prepare_in_processes": True}})
    adapter = Boom(registry=registry)
    adapter.load_from_model(model)
    report = adapter.predict_dataset(ds)
    assert report.failed == 12 and report.fatal_error, report.summary()
import os; print(os.getpid())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "resource_tracker" not in done.stderr and "leaked" not in done.stderr, done.stderr
    assert shm_blocks(int(done.stdout.split()[-1])) == set()


def test_blocks_of_a_process_killed_outright_are_removed_when_workers_start_again(tmp_path):
    """A run killed with its resource tracker (a process group SIGKILLed) leaves its reads' blocks in /dev/shm:
    the next start of reading workers removes those of processes that are gone, and no one else's."""
    from adapter_base.prediction.batch_reader import BatchReader
    from adapter_base.prediction.decoders import remove_orphan_blocks

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    dead = f"/dev/shm/{block_prefix(int(gone))}0123456789ab"
    live = f"/dev/shm/{block_prefix(os.getpid())}ba9876543210"
    other = "/dev/shm/not-ours-ma1_ab"
    for path in (dead, live, other):
        with open(path, "wb") as fh:
            fh.write(b"x" * 4096)
    try:
        BatchReader(LocalStore(tmp_path / "store"), 2, fetch_threads=3).start()  # a new pool: workers start again
        assert not os.path.exists(dead) and os.path.exists(live) and os.path.exists(other)
        assert remove_orphan_blocks() == 0
    finally:
        for path in (dead, live, other):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
