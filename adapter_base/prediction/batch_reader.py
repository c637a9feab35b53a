"""Reading and decoding a whole batch in a worker process, handed back in one shared-memory block.

For an adapter with the framework's default ``prepare_item_func``: a worker opens the store
from its URI once, reads each item of the batch, prepares it exactly as the default does
(``media.decode_item``: images to RGB arrays, text to ``str``) and copies the batch's arrays
into one ``multiprocessing.shared_memory`` block; only the block's name and each item's
offset, shape and dtype (or its error, or its text) come back through the pipe. The caller
maps the block once and hands out a view per item; the block's name is unlinked at once,
and its memory goes when the last view of the batch does.

One block and one pipe round trip per batch, not per item: on a few CPUs the per-item
hand-off costs more than the GIL turns it saves (``prediction.pools``). This moves the
reading and decoding out of the predicting process, as a PyTorch ``DataLoader``'s workers do.
The processes are forked once, from the thread that starts a run (``BatchReader.start``), and
kept for the next run of the same store; they end with the process.
"""

from __future__ import annotations

import atexit
import math
import mmap
import multiprocessing
import os
import secrets
import threading
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import resource_tracker, shared_memory
from typing import Any, Sequence

import numpy as np

from ..entities import Item
from ..media import decode_item, map_large_allocations
from ..processes import exit_with_parent
from ..registry import layout
from ..storage import open_store
from .decoders import block_prefix

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_key: tuple[str, int, int] | None = None
_store: Any = None  # in a worker: the store it opened
_fetch_pool: ThreadPoolExecutor | None = None  # in a worker: its threads reading from a remote store


class BatchReader:
    """Items of ``store_uri`` read and prepared a batch at a time on ``processes`` worker processes."""

    def __init__(self, store_uri: str, processes: int, *, max_bytes: int | None = None, fetch_threads: int = 1) -> None:
        self.store_uri = store_uri
        self.processes = processes
        self.max_bytes = max_bytes
        self.fetch_threads = fetch_threads

    def start(self) -> "BatchReader":
        """Have the worker processes running (forked now, unless already there for this store); returns self."""
        _shared_pool(self.store_uri, self.processes, self.fetch_threads)
        return self

    def submit(self, items: Sequence[Item]) -> "Future[tuple[Any, ...]]":
        """Read and prepare ``items`` in a worker; ``take`` the future's result for the prepared inputs."""
        jobs = [(it.dataset_id, it.id, it.mimetype, f"item {it.id} ({it.path})") for it in items]
        inner = _shared_pool(self.store_uri, self.processes, self.fetch_threads).submit(_read_batch, jobs, self.max_bytes)
        # The caller's own future: it may fail it at a deadline without touching the executor's.
        outer: Future[tuple[Any, ...]] = Future()
        inner.add_done_callback(lambda f: _follow(f, outer))
        return outer

    @staticmethod
    def take(result: tuple[Any, ...]) -> list[Any]:
        """Each item's prepared input (an array viewing the batch's block, a ``str``) or the exception it raised."""
        name, size, entries = result
        block = _map_and_unlink(name, size) if name else None
        out: list[Any] = []
        for kind, value in entries:
            if kind == "array":
                offset, shape, dtype = value
                dt = np.dtype(dtype)
                out.append(np.frombuffer(block, dt, count=math.prod(shape), offset=offset).reshape(shape))  # type: ignore[arg-type]
            else:
                out.append(value)  # a prepared str, or the item's exception
        return out


def _follow(inner: "Future[Any]", outer: "Future[Any]") -> None:
    try:
        if inner.cancelled():
            outer.cancel()
        elif inner.exception() is not None:
            outer.set_exception(inner.exception())  # type: ignore[arg-type]
        else:
            outer.set_result(inner.result())
    except InvalidStateError:  # failed at its deadline meanwhile: a block it made is unlinked here
        if not inner.cancelled() and inner.exception() is None and inner.result()[0]:
            _map_and_unlink(inner.result()[0], inner.result()[1]).close()


def _read_batch(jobs: list[tuple[str, str, str, str]], max_bytes: int | None) -> tuple[Any, ...]:
    """In a worker: read and prepare every item; the arrays copied into one new shared memory block."""
    global _store
    entries: list[tuple[str, Any]] = []
    arrays: list[np.ndarray] = []
    def fetch(job: tuple[str, str, str, str]) -> bytes | BaseException:
        try:
            return _store.get_bytes(layout.item_binary(job[0], job[1]))
        except Exception as exc:  # noqa: BLE001 - the item's own error
            return exc

    # A remote store's reads wait on the network: several in flight (the worker's fetch threads).
    fetched = list(_fetch_pool.map(fetch, jobs)) if _fetch_pool is not None else [fetch(j) for j in jobs]
    for (dataset_id, item_id, mimetype, what), data in zip(jobs, fetched):
        try:
            if isinstance(data, BaseException):
                raise data
            value = decode_item(data, mimetype, what=what, max_bytes=max_bytes)
        except Exception as exc:  # noqa: BLE001 - the item's own error, raised again in the caller
            entries.append(("error", exc))
            continue
        if isinstance(value, np.ndarray):
            arrays.append(value)
            entries.append(("array", None))
        else:
            entries.append(("value", value))
        data = value = None  # type: ignore[assignment]
    del fetched
    if not arrays:
        return ("", 0, entries)
    size = sum(a.nbytes for a in arrays)
    shm = shared_memory.SharedMemory(name=block_prefix(os.getppid()) + secrets.token_hex(6), create=True, size=max(1, size))
    try:
        offset, k = 0, 0
        for n, (kind, _) in enumerate(entries):
            if kind != "array":
                continue
            a = arrays[k]
            np.ndarray(a.shape, a.dtype, buffer=shm.buf, offset=offset)[...] = a
            entries[n] = ("array", (offset, a.shape, a.dtype.str))
            offset += a.nbytes
            arrays[k] = None  # type: ignore[call-overload] - its memory goes now
            k += 1
    except BaseException:
        shm.close()
        shm.unlink()
        raise
    name = shm.name
    shm.close()  # the caller unlinks it
    return (name, size, entries)


def _map_and_unlink(name: str, size: int) -> mmap.mmap:
    path = f"/dev/shm/{name}"
    fd = os.open(path, os.O_RDWR)
    try:
        return mmap.mmap(fd, max(1, size))
    finally:
        os.close(fd)
        os.unlink(path)
        resource_tracker.unregister(f"/{name}", "shared_memory")  # registered by the worker that made it


def _shared_pool(store_uri: str, processes: int, fetch_threads: int) -> ProcessPoolExecutor:
    global _pool, _pool_key
    with _lock:
        if _pool is None or _pool_key != (store_uri, processes, fetch_threads):
            resource_tracker.ensure_running()  # one tracker for the workers and this process (see decoders)
            fork = multiprocessing.get_context("fork")
            pool = ProcessPoolExecutor(processes, mp_context=fork, initializer=_start_worker, initargs=(os.getpid(), store_uri, fetch_threads))
            old, _pool, _pool_key = _pool, pool, (store_uri, processes, fetch_threads)
            if old is not None:
                old.shutdown(wait=False, cancel_futures=False)
            for f in [_pool.submit(int) for _ in range(processes)]:
                f.result()  # fork every worker now, from this thread
        return _pool


def _start_worker(parent_pid: int, store_uri: str, fetch_threads: int) -> None:
    """In a new worker: end with ``parent_pid``; open the store; give freed image buffers back to the system."""
    global _store, _fetch_pool
    exit_with_parent(parent_pid)
    map_large_allocations()
    _store = open_store(store_uri, create=False)
    _fetch_pool = ThreadPoolExecutor(fetch_threads, thread_name_prefix="fetch") if fetch_threads > 1 else None


def discard() -> None:
    """Forget the worker processes (the next run forks new ones): after one of them died."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


@atexit.register
def _shutdown() -> None:
    with _lock:
        pool = _pool
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
