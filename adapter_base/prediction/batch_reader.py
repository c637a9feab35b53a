"""Reading and decoding a whole batch in a worker process, handed back in one shared-memory block.

For an adapter with the framework's default ``prepare_item_func``: a worker opens the store
anew once (``ObjectStore.reopened``), reads each item of the batch, prepares it exactly as the default does
(``media.decode_item``: images to RGB arrays, text to ``str``), the images decoded straight
into one ``multiprocessing.shared_memory`` block sized from their headers; only the block's
name and each item's offset, shape and dtype (or its error, or its text) come back through
the pipe. The caller maps the block once and hands out a view per item of one copy of it, then
keeps the block for a later read of the run (up to ``SPARE_BYTES``): a worker writing into pages a
block already has spends a fifth of what faulting in fresh ones costs (0.6 vs 3.0 ms a batch of
sixteen 256x256 images on this VM), and the copy costs 0.2 ms. A block too large to keep is not
copied: its name is unlinked at once, and its memory goes when the last view of the batch does.
The run's kept blocks are removed when it ends (``close``).

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
import threading
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Sequence

import numpy as np

from ..entities import Item
from ..media import decode_image, decode_item, read_image_header
from ..processes import KeptPool, exit_with_parent, lower_priority
from ..registry import layout
from .decoders import before_fork, block_prefix, map_and_unlink, map_block, unlink_block

#: The most bytes of blocks a run keeps for its later reads (an eighth of its ``prepared_bytes_budget`` at most:
#: they are memory besides the prepared inputs the budget counts); a block larger than its share is not kept.
SPARE_BYTES = 64 * 2**20

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
        self._spares: list[tuple[str, int]] = []  # (name, capacity) of the blocks free for the next reads
        self._max_spares = 2 * processes + 1  # the reads one feed has out at once, and the one being taken
        self._max_kept = min(SPARE_BYTES, max_bytes // 8 if max_bytes else SPARE_BYTES) // self._max_spares
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> "BatchReader":
        """Have the worker processes running (forked now, unless already there for this store); returns self."""
        _shared_pool(self.store, self.processes, self.fetch_threads)
        return self

    def submit(self, items: Sequence[Item], allowance: int | None = None) -> "Future[tuple[Any, ...]]":
        """Read and prepare ``items`` in a worker, holding at most ``allowance`` bytes at once (None: no limit);
        ``take`` the future's result for the prepared inputs."""
        jobs = [(it.dataset_id, it.id, it.mimetype, f"item {it.id} ({it.path})") for it in items]
        spare = self._lend()
        try:
            inner = _shared_pool(self.store, self.processes, self.fetch_threads).submit(_read_batch, jobs, self.max_bytes, allowance, spare)
        except BaseException:
            self._discard(spare)
            raise
        # The caller's own future: it may fail it at a deadline without touching the executor's.
        outer: Future[tuple[Any, ...]] = Future()
        inner.add_done_callback(lambda f: self._follow(f, outer, spare))
        return outer

    def drop(self, fut: "Future[tuple[Any, ...]]") -> None:
        """Give up a read that will not be taken: cancelled, or its block given back if it is already back."""
        if fut.cancel():
            return  # a block the worker makes later is given back when it comes (``_follow``)
        if fut.done() and fut.exception() is None and fut.result()[0]:
            self._give_back(fut.result()[0], fut.result()[3])

    def take(self, result: tuple[Any, ...]) -> list[Any]:
        """Each item's prepared input (an array viewing the batch's data, a ``str``), the exception it raised,
        or ``Deferred`` (it did not fit in the read's allowance: read it again)."""
        name, size, entries, capacity = result
        block: Any = None
        if name and capacity <= self._max_kept:
            mapped = map_block(name, size)
            try:
                view = np.frombuffer(mapped, np.uint8, count=size)
                block = view.copy()  # the user's arrays view this copy: the block is free for the next read at once
                del view
            finally:
                mapped.close()
                self._give_back(name, capacity)
        elif name:
            block = map_and_unlink(name, size, populate=True)
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


    def close(self) -> None:
        """Remove the blocks kept for later reads; a read still out has its block removed when it comes back."""
        with self._lock:
            self._closed = True
            spares, self._spares = self._spares, []
        for name, _ in spares:
            _unlink_quietly(name)

    # --- the blocks kept between reads --------------------------------------------------------

    def _lend(self) -> tuple[str, int] | None:
        """A kept block for the next read to write into (the most recently given back), or None."""
        with self._lock:
            return self._spares.pop() if self._spares else None

    def _give_back(self, name: str, capacity: int) -> None:
        """Keep block ``name`` for a later read, or remove it (the run ended, it is too large, enough are kept)."""
        with self._lock:
            if not self._closed and capacity <= self._max_kept and len(self._spares) < self._max_spares:
                self._spares.append((name, capacity))
                return
        _unlink_quietly(name)

    def _discard(self, spare: tuple[str, int] | None) -> None:
        if spare is not None:
            _unlink_quietly(spare[0])

    def _follow(self, inner: "Future[Any]", outer: "Future[Any]", spare: tuple[str, int] | None) -> None:
        """Settle the caller's future from the worker's; the blocks the read did not hand on are given back or removed."""
        try:
            if inner.cancelled():
                self._discard(spare)
                outer.cancel()
            elif inner.exception() is not None:
                self._discard(spare)  # the worker wrote into it, or died doing so: it is not given to another read
                outer.set_exception(inner.exception())  # type: ignore[arg-type]
            else:
                name, size, entries, unused = inner.result()
                if unused is not None:
                    self._give_back(*unused)
                capacity = spare[1] if spare is not None and name == spare[0] else size
                result = (name, size, entries, capacity)
                try:
                    outer.set_result(result)
                except InvalidStateError:  # failed at its deadline meanwhile: its block is not taken
                    if name:
                        self._give_back(name, capacity)
        except InvalidStateError:  # failed at its deadline meanwhile
            pass


def _unlink_quietly(name: str) -> None:
    try:
        unlink_block(name)
    except FileNotFoundError:  # removed already (as a dead process's, say)
        pass


@dataclass(frozen=True)
class Decoded:
    """An image decoded in a worker, and the most bytes its decoding held (``ImageHeader.decode_bytes``)."""

    array: np.ndarray
    cost: int


@dataclass(frozen=True)
class Deferred:
    """An item a read left for later, to stay within its allowance; ``cost``: the bytes reading it will hold."""

    cost: int


def _read_batch(
    jobs: list[tuple[str, str, str, str]], max_bytes: int | None, allowance: int | None, spare: tuple[str, int] | None = None
) -> tuple[Any, ...]:
    """In a worker: read and prepare the items, the images decoded straight into one shared memory block: ``spare``
    (a kept block's name and capacity) where they fit in it, else a new one. ``(block name, bytes used, entries,
    the spare if it was not used)``.

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
        return ("", 0, entries, spare)
    if spare is not None and spare[1] >= size:
        name, unused = spare[0], None
        buf: Any = map_block(name, spare[1], populate=True)  # its pages are there: one call maps them all
        made = None
    else:
        made = shared_memory.SharedMemory(name=block_prefix(os.getppid()) + secrets.token_hex(6), create=True, size=max(1, size))
        name, unused, buf = made.name, spare, made.buf
    try:
        for n, offset, data, what in planned:
            def into_block(shape: tuple[int, ...], at: int = offset) -> np.ndarray:
                return np.ndarray(shape, np.uint8, buffer=buf, offset=at)

            try:
                a = decode_image(data, what=what, allocate=into_block)
                entries[n] = ("array", (offset, a.shape, a.dtype.str, entries[n][1]))
                del a  # a view of the block: it must go before the block is closed
            except Exception as exc:  # noqa: BLE001 - the item's own error
                entries[n] = ("error", exc)
    except BaseException:
        _close(made, buf)
        if made is not None:
            made.unlink()
        raise
    _close(made, buf)  # the caller unlinks it, or keeps it for a later read
    return (name, size, entries, unused)


def _close(made: shared_memory.SharedMemory | None, mapped: Any) -> None:
    """Close this worker's mapping of the block it wrote: the new one it ``made``, else the spare it ``mapped``."""
    try:
        (made if made is not None else mapped).close()
    except BufferError:  # a traceback still sees an array of it: the mapping goes with that
        pass




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
