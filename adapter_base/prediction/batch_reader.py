"""Reading and decoding a whole batch in a worker process, handed back in one shared-memory block.

For an adapter with the framework's default ``prepare_item_func``: a worker opens the store
anew once (``ObjectStore.reopened``), reads each item of the batch, prepares it exactly as the default does
(``media.decode_item``: images to RGB arrays, text to ``str``), the images decoded straight
into one ``multiprocessing.shared_memory`` block sized from their headers; only the block's
name and each item's offset, shape and dtype (or its error, or its text) come back through
the pipe. The caller maps the block once and hands out a view per item; the block's name is
unlinked at once, and its memory goes when the last view of the batch does.

A read holds no more than the ``allowance`` the caller reserved for it in the run's
``prepared_bytes_budget``: the files read, the arrays decoded so far and the one being
decoded (``ImageHeader.decode_bytes``), counted from the headers before any pixel is decoded.
Items that would not fit come back ``Deferred``, to be read again under a reservation of their own.

One block and one pipe round trip per batch, not per item: on a few CPUs the per-item
hand-off costs more than the GIL turns it saves (``prediction.pools``). This moves the
reading and decoding out of the predicting process, as a PyTorch ``DataLoader``'s workers do.
The processes are forked once, from the thread that starts a run (``BatchReader.start``), and
kept for the next run of the same store; they end with the process.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Sequence

import numpy as np

from ..entities import Item
from ..media import decode_image, decode_item, read_image_header
from ..processes import KeptPool, exit_with_parent, lower_priority
from ..registry import layout
from .decoders import before_fork, block_prefix, map_and_unlink

_store: Any = None  # in a worker: the store it opened
_fetch_pool: ThreadPoolExecutor | None = None  # in a worker: its threads reading from a remote store


class BatchReader:
    """Items of ``store`` read and prepared a batch at a time on ``processes`` worker processes, each with the
    store opened anew (``ObjectStore.reopened``: the same location, endpoint, credentials and settings)."""

    def __init__(self, store: Any, processes: int, *, max_bytes: int | None = None, fetch_threads: int = 1) -> None:
        self.store = store
        self.processes = processes
        self.max_bytes = max_bytes
        self.fetch_threads = fetch_threads

    def start(self) -> "BatchReader":
        """Have the worker processes running (forked now, unless already there for this store); returns self."""
        _shared_pool(self.store, self.processes, self.fetch_threads)
        return self

    def submit(self, items: Sequence[Item], allowance: int | None = None) -> "Future[tuple[Any, ...]]":
        """Read and prepare ``items`` in a worker, holding at most ``allowance`` bytes at once (None: no limit);
        ``take`` the future's result for the prepared inputs."""
        jobs = [(it.dataset_id, it.id, it.mimetype, f"item {it.id} ({it.path})") for it in items]
        inner = _shared_pool(self.store, self.processes, self.fetch_threads).submit(_read_batch, jobs, self.max_bytes, allowance)
        # The caller's own future: it may fail it at a deadline without touching the executor's.
        outer: Future[tuple[Any, ...]] = Future()
        inner.add_done_callback(lambda f: _follow(f, outer))
        return outer

    @staticmethod
    def drop(fut: "Future[tuple[Any, ...]]") -> None:
        """Give up a read that will not be taken: cancelled, or its block freed if it is already back."""
        if fut.cancel():
            return  # a block the worker makes later is freed when it comes back (``_follow``)
        if fut.done() and fut.exception() is None and fut.result()[0]:
            map_and_unlink(fut.result()[0], fut.result()[1]).close()

    @staticmethod
    def take(result: tuple[Any, ...]) -> list[Any]:
        """Each item's prepared input (an array viewing the batch's block, a ``str``), the exception it raised,
        or ``Deferred`` (it did not fit in the read's allowance: read it again)."""
        name, size, entries = result
        block = map_and_unlink(name, size, populate=True) if name else None
        out: list[Any] = []
        for kind, value in entries:
            if kind == "array":
                offset, shape, dtype, cost = value
                array = np.frombuffer(block, np.dtype(dtype), count=math.prod(shape), offset=offset).reshape(shape)  # type: ignore[arg-type]
                out.append(Decoded(array, cost))
            elif kind == "defer":
                out.append(Deferred(value))
            else:
                out.append(value)  # a prepared str, or the item's exception
        return out


@dataclass(frozen=True)
class Decoded:
    """An image decoded in a worker, and the most bytes its decoding held (``ImageHeader.decode_bytes``)."""

    array: np.ndarray
    cost: int


@dataclass(frozen=True)
class Deferred:
    """An item a read left for later, to stay within its allowance; ``cost``: the bytes reading it will hold."""

    cost: int


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
            map_and_unlink(inner.result()[0], inner.result()[1]).close()


def _read_batch(jobs: list[tuple[str, str, str, str]], max_bytes: int | None, allowance: int | None) -> tuple[Any, ...]:
    """In a worker: read and prepare the items, the images decoded straight into one new shared memory block.

    With an ``allowance`` (bytes the caller reserved for this read), the items are taken in order
    while what the read holds at once (every file read, the arrays so far, one image's decoding)
    stays within it; the first item that would not fit and those after it come back as
    ``("defer", bytes it needs)``, each read again later.
    """
    fetched = list(_fetch_pool.map(_fetch, jobs)) if _fetch_pool is not None else [_fetch(j) for j in jobs]
    data_total = sum(len(d) for d in fetched if isinstance(d, bytes))
    entries: list[tuple[str, Any]] = []
    planned: list[tuple[int, int, bytes, str]] = []  # (entry index, offset, data, what) of each image to decode
    size = 0
    for (_, _, mimetype, what), data in zip(jobs, fetched):
        try:
            if isinstance(data, BaseException):
                raise data
            if not mimetype.startswith("image/"):
                value = decode_item(data, mimetype, what=what)
                held = sys.getsizeof(value)
                if allowance is not None and data_total + size + held > allowance:
                    entries.extend(_deferred(jobs[len(entries) :], fetched[len(entries) :]))
                    break
                entries.append(("value", value))
                data_total += held  # kept with the arrays from now on
                continue
            header = read_image_header(data, what=what)
            cost = header.decode_bytes()
            header.check_budget(cost, max_bytes, what=what)
        except Exception as exc:  # noqa: BLE001 - the item's own error, raised again in the caller
            entries.append(("error", exc))
            continue
        if allowance is not None and data_total + size + cost - len(data) > allowance:  # ``cost`` counts the file once
            entries.extend(_deferred(jobs[len(entries) :], fetched[len(entries) :]))
            break
        planned.append((len(entries), size, data, what))
        entries.append(("array", cost))
        size += header.array_bytes
    del fetched
    if not planned:
        return ("", 0, entries)
    shm = shared_memory.SharedMemory(name=block_prefix(os.getppid()) + secrets.token_hex(6), create=True, size=max(1, size))
    try:
        for n, offset, data, what in planned:
            def into_block(shape: tuple[int, ...], at: int = offset) -> np.ndarray:
                return np.ndarray(shape, np.uint8, buffer=shm.buf, offset=at)

            try:
                a = decode_image(data, what=what, allocate=into_block)
                entries[n] = ("array", (offset, a.shape, a.dtype.str, entries[n][1]))
                del a  # a view of the block: it must go before the block is closed
            except Exception as exc:  # noqa: BLE001 - the item's own error
                entries[n] = ("error", exc)
    except BaseException:
        shm.close()
        shm.unlink()
        raise
    name = shm.name
    shm.close()  # the caller unlinks it
    return (name, size, entries)


def _fetch(job: tuple[str, str, str, str]) -> bytes | BaseException:
    """In a worker: the item's bytes from the store, or the error reading them."""
    try:
        return _store.get_bytes(layout.item_binary(job[0], job[1]))
    except Exception as exc:  # noqa: BLE001 - the item's own error
        return exc


def _deferred(jobs: list[tuple[str, str, str, str]], fetched: list[Any]) -> list[tuple[str, int]]:
    """The entries of items a read leaves for later, each with the bytes reading it again will hold."""
    return [("defer", _cost(data, mimetype)) for (_, _, mimetype, _), data in zip(jobs, fetched)]


def _cost(data: Any, mimetype: str) -> int:
    """The bytes reading ``data`` again will hold (its decoding's, for an image whose header reads)."""
    if not isinstance(data, bytes):
        return 0
    if mimetype.startswith("image/"):
        try:
            return read_image_header(data).decode_bytes()
        except Exception:  # noqa: BLE001 - it fails again, by name, when it is read
            return len(data)
    return 5 * len(data) + 100  # the file and a str of it (up to 4 bytes a character, and its header)


def _shared_pool(store: Any, processes: int, fetch_threads: int) -> ProcessPoolExecutor:
    return _POOL.get((store, processes, fetch_threads), processes, store, fetch_threads)


def _start_worker(parent_pid: int, store: Any, fetch_threads: int) -> None:
    """In a new worker: end with ``parent_pid``; yield the CPUs to the predicting process; open the store."""
    global _store, _fetch_pool
    exit_with_parent(parent_pid)
    lower_priority()
    # No ``map_large_allocations`` here: on a VM a fresh page costs ~3.5 us to fault in, and an image's decoding
    # buffers mapped anew for every item made HD JPEGs 1.4x slower to read; glibc's own threshold reuses them
    # (and still maps buffers over 32 MiB on their own, so huge images give their memory back).
    _store = store.reopened()
    _fetch_pool = ThreadPoolExecutor(fetch_threads, thread_name_prefix="fetch") if fetch_threads > 1 else None


def discard() -> None:
    """Forget the worker processes (the next run forks new ones): after one of them died."""
    _POOL.discard()


_POOL = KeptPool(_start_worker, before_fork=before_fork)
