"""Where prediction results go: handed to a collector as they come, stored on a write pool of their own."""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence

from ..entities import Item, PredictionSet
from ..registry import Registry
from .tasks import PREDICT, Task
from .write_process import WriteProcess

log = logging.getLogger(__name__)

#: Stores one item's prediction set (raises when it cannot).
Store = Callable[[Item, PredictionSet], None]
#: Receives each item's prediction set on the thread that calls ``predict``, before it is stored.
Collector = Callable[[Item, PredictionSet], None]
#: Told which items were written: None where an item's set was stored, else the error.
Outcomes = Callable[[Sequence[Item], Sequence["BaseException | None"]], None]


def registry_store(registry: Registry, task: Task = PREDICT, dataset_id: str | None = None) -> Store:
    """Store each record as the item's record of its model (its prediction set, or with ``EMBED`` its
    embedding), replacing earlier ones, under ``dataset_id`` (the dataset being predicted; default: the item's).

    The records come from the task's ``record`` (``contract.stamp``), which validated them: they are not validated again.
    """
    return lambda item, record: task.put(registry, record, dataset_id or item.dataset_id)


def stores_by_default(registry: Registry) -> bool:
    """True when ``registry`` stores records as ``Registry`` does (a JSON document at the task's key), so that a
    writing process can store them at that key itself."""
    cls = type(registry)
    return cls.put_predictions is Registry.put_predictions and cls.put_embedding is Registry.put_embedding


def started_write_process(registry: Registry, task: Task, dataset_id: str | None, *, processes: int, threads: int) -> WriteProcess | None:
    """Worker processes storing ``task``'s records on ``registry``'s store under ``dataset_id`` (default: each item's),
    ``threads`` writes in flight in all, forked now: where ``processes`` are planned and the registry stores records
    the framework's way; else None (the write threads store them)."""
    if not (processes and stores_by_default(registry)):
        return None
    key = task.key
    return WriteProcess(
        registry.store, lambda item, record: key(record, dataset_id or item.dataset_id), processes=processes, threads=max(1, threads // processes)
    ).start()


class PredictShare:
    """How much of a run's time ``predict`` spends on the CPU of the thread it runs on (``time.thread_time``).

    A ``predict`` that computes on this process's CPU needs the GIL back after every call into
    native code, and loses turns to every Python thread writing records; one that waits on a
    device sleeps with the GIL released, and those threads cost it nothing.
    """

    #: From this share of the run's time on, ``busy`` is true. A computing ``predict`` may get well under half of
    #: the time where the reads, the writes and an S3 server share a few CPUs with it: on 2 CPUs, 64x64 images on
    #: SeaweedFS, a model of 1.9 ms of CPU an item had 0.37 of the time, and its records written from the threads
    #: cost 16% of the rate (219 vs 261 items/s). A model waiting on a device had 0.04-0.06.
    BUSY = 0.25

    def __init__(self) -> None:
        self._start: float | None = None
        self._cpu = 0.0

    def add(self, cpu_s: float, wall_s: float) -> None:
        """A ``predict`` call lasted ``wall_s`` seconds, ``cpu_s`` of them on the CPU of the thread it ran on."""
        if self._start is None:  # counted from the first call's start: not the run's start-up, while no input was there yet
            self._start = time.monotonic() - wall_s
        self._cpu += cpu_s

    def share(self) -> float:
        """CPU seconds spent in ``predict`` over the seconds since its first call began (0 before any call)."""
        if self._start is None:
            return 0.0
        return self._cpu / max(time.monotonic() - self._start, 1e-9)

    def busy(self) -> bool:
        """True while ``predict`` has kept its thread on the CPU for ``BUSY`` (a quarter) of the time since its first call or more."""
        return self.share() >= self.BUSY


class ResultWriter:
    """Takes each batch's results: gives them to the collector at once, stores them while ``predict`` goes on.

    Writes run on ``workers`` threads, ``chunk`` items per task (fewer hand-offs), with at
    most ``backlog`` items (default ``4 * workers``) waiting or being written: ``flush`` waits
    when the store falls behind. A backlog of a few batches lets ``predict`` go on while a
    batch's sets are written, instead of waiting at each batch for its first ones.
    Without a store the items count as written as soon as they are flushed.

    With a ``remote`` (``WriteProcess``), the chunks are stored by its worker processes instead,
    ``remote_chunk`` items each, and by the threads here only where it fails as a whole (its process
    died: from then on, all of them). With ``route`` too, a batch's records go to the processes only
    where ``route()`` is true when they are flushed (``PredictShare.busy``), else to the threads.
    """

    def __init__(
        self,
        store: Store | None,
        *,
        collect: Collector | None,
        workers: int,
        chunk: int,
        on_written: Outcomes,
        backlog: int | None = None,
        remote: WriteProcess | None = None,
        remote_chunk: int | None = None,
        route: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.collect = collect
        self.chunk = chunk
        self.remote_chunk = max(chunk, remote_chunk or chunk)  # a hand-off to a process costs more than to a thread
        self.route = route
        self._routed: bool | None = None  # where the last flush's records went, with a route
        self.on_written = on_written
        self.remote = remote if store is not None else None
        self._pending: list[tuple[Item, PredictionSet]] = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="write")
        self._tasks = max(1, (backlog or 4 * workers) // chunk)
        self._in_flight = threading.BoundedSemaphore(self._tasks)  # tasks waiting or being written

    def accept(self, item: Item, pset: PredictionSet) -> None:
        """One item's result: collected now, stored at the next ``flush``."""
        if self.collect is not None:
            self.collect(item, pset)
        self._pending.append((item, pset))

    def flush(self) -> None:
        """Start storing every accepted result."""
        done, self._pending = self._pending, []
        if self.store is None:
            self.on_written([it for it, _ in done], [None] * len(done))
            return
        if self.remote is not None and self._to_processes():
            for start in range(0, len(done), self.remote_chunk):
                self._send(done[start : start + self.remote_chunk])
            return
        for start in range(0, len(done), self.chunk):
            chunk = done[start : start + self.chunk]
            self._in_flight.acquire()
            self._write_here(chunk)

    def _send(self, chunk: list[tuple[Item, PredictionSet]]) -> None:
        """Hand ``chunk`` to the write processes once it has its places in the backlog; where they are gone, write it here."""
        places = self._places(chunk)
        for _ in range(places):
            self._in_flight.acquire()
        if self.remote is not None:  # an earlier chunk may have found them gone
            try:
                fut = self.remote.submit(chunk)
            except Exception:  # noqa: BLE001 - its processes are gone: this run writes here from now on
                self._stop_remote()
            else:
                fut.add_done_callback(lambda f, c=chunk: self._finish_remote(f, c))  # type: ignore[misc]
                return
        for _ in range(places - 1):  # written here instead, in one task: one place is enough
            self._in_flight.release()
        self._write_here(chunk)

    def _to_processes(self) -> bool:
        """Whether this flush's records go to the write processes (``route``, where there is one); a change is logged."""
        if self.route is None:
            return True
        chosen = self.route()
        if chosen != self._routed:
            self._routed = chosen
            log.debug("the records now go to the %s", "write processes" if chosen else "write threads of this process")
        return chosen

    def _places(self, chunk: Sequence[object]) -> int:
        """Places in the backlog a chunk sent to the processes takes: one per ``chunk`` items (all of them at most)."""
        return min(self._tasks, math.ceil(len(chunk) / self.chunk))

    def close(self) -> None:
        """Wait for every write started."""
        for _ in range(self._tasks):  # every task gives its place back once its outcomes are told
            self._in_flight.acquire()
        self._pool.shutdown(wait=True)
        for _ in range(self._tasks):
            self._in_flight.release()

    def _write_here(self, chunk: list[tuple[Item, PredictionSet]]) -> None:
        fut = self._pool.submit(self._write_chunk, chunk)
        fut.add_done_callback(lambda f, c=chunk: self._finish(f, c))  # type: ignore[misc]

    def _stop_remote(self) -> None:
        remote, self.remote = self.remote, None
        if remote is not None:
            remote.discard()

    def _finish_remote(self, fut: "Future[list[BaseException | None]]", chunk: list[tuple[Item, PredictionSet]]) -> None:
        places = self._places(chunk)
        try:
            errors = fut.result()
        except BaseException:  # noqa: BLE001 - not the items' errors: the process died, or the chunk did not reach it
            self._stop_remote()
            for _ in range(places - 1):  # one place kept until written here
                self._in_flight.release()
            try:
                self._write_here(chunk)
            except RuntimeError as exc:  # closed meanwhile (the run ended on an error)
                self._in_flight.release()
                self.on_written([it for it, _ in chunk], [exc] * len(chunk))
            return
        try:
            self.on_written([it for it, _ in chunk], errors)
        finally:
            for _ in range(places):
                self._in_flight.release()

    def _write_chunk(self, chunk: list[tuple[Item, PredictionSet]]) -> list[BaseException | None]:
        """Write a few items' prediction sets one after the other: one pool task, one hand-off."""
        assert self.store is not None
        out: list[BaseException | None] = []
        for item, pset in chunk:
            try:
                self.store(item, pset)
                out.append(None)
            except Exception as exc:  # noqa: BLE001 - recorded per item
                out.append(exc)
        return out

    def _finish(self, fut: "Future[list[BaseException | None]]", chunk: list[tuple[Item, PredictionSet]]) -> None:
        try:
            errors = fut.result()
        except BaseException as exc:  # noqa: BLE001 - the task itself failed: every item in it
            errors = [exc] * len(chunk)
        try:
            self.on_written([it for it, _ in chunk], errors)
        finally:
            self._in_flight.release()
