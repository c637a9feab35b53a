"""Decoding images in worker processes; the arrays come back through shared memory, not pickled.

A worker decodes an item's bytes exactly as the default ``prepare_item_func`` does
(``media.decode_image``: EXIF orientation, RGB) straight into a ``multiprocessing.shared_memory``
block and returns only its name, shape and dtype; the caller maps the block as the array
itself (no copy) and unlinks its name at once, so its memory goes when the array does. The
caller reads the header first: the byte budget is checked and reserved there, counting the
worker's copy of the file and the pickled one besides what the decoding holds. A
``ValidationError`` from the worker is raised again, unchanged, in the caller.

The processes are forked once, from the thread that starts a run, before the run's own
threads exist (``ProcessDecoder.start``), as a PyTorch ``DataLoader`` forks its workers: a
fork costs milliseconds, and unlike ``spawn`` it never re-imports the user's ``__main__``
(a script without an ``if __name__ == "__main__"`` guard would run again in each worker).
They are kept for the next run and end with the process.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import secrets
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

from ..media import Reserve, decode_image, map_large_allocations, read_image_header
from ..processes import KeptPool, exit_with_parent, lower_priority



class ProcessDecoder:
    """``decode_image`` run on ``processes`` worker processes (shared by every run of this process)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes

    def start(self) -> "ProcessDecoder":
        """Have the worker processes running (forked now, unless already there); returns self."""
        _shared_pool(self.processes)
        return self

    def decode_image(
        self, data: bytes, *, what: str = "item", max_bytes: int | None = None, reserve: Reserve | None = None
    ) -> np.ndarray:
        """What ``media.decode_image(data, what=what, max_bytes=max_bytes, reserve=reserve)`` returns, decoded in
        a worker process; the bytes checked and reserved also count the file's copies on the way to the worker."""
        header = read_image_header(data, what=what)
        cost = header.decode_bytes(data_copies=DATA_COPIES)
        header.check_budget(cost, max_bytes, what=what)
        settle = reserve(cost) if reserve is not None else None
        kept = 0
        try:
            pool = _shared_pool(self.processes)
            try:
                name, shape, dtype = pool.submit(_decode_to_shared_memory, data, what).result()  # re-raises its ValidationError
            except BrokenProcessPool:
                _POOL.discard(pool)
                raise RuntimeError(f"{what}: the image decoding process died (out of memory?); the next items get a new one") from None
            arr = _take(name, shape, dtype)
            kept = arr.nbytes
            return arr
        finally:
            if settle is not None:
                settle(kept)


#: Copies of an image file held while a worker decodes it: the caller's, the pickled call, the worker's.
DATA_COPIES = 3


def _decode_to_shared_memory(data: bytes, what: str) -> tuple[Any, ...]:
    """In the worker: decode straight into a new shared memory block; ``(name, shape, dtype)``."""
    blocks: list[shared_memory.SharedMemory] = []

    def allocate(shape: tuple[int, ...]) -> np.ndarray:
        size = max(1, math.prod(shape))
        blocks.append(shared_memory.SharedMemory(name=block_prefix(os.getppid()) + secrets.token_hex(6), create=True, size=size))
        return np.ndarray(shape, np.uint8, buffer=blocks[-1].buf)

    try:
        arr = decode_image(data, what=what, allocate=allocate)
    except BaseException:
        for shm in blocks:
            shm.unlink()
            try:
                shm.close()
            except BufferError:  # the traceback still sees the array; the mapping goes with it
                pass
        raise
    shape, dtype = arr.shape, arr.dtype.str
    del arr
    blocks[0].close()  # the caller unlinks it
    return (blocks[0].name, shape, dtype)


def block_prefix(pid: int) -> str:
    """How the names of the shared memory blocks of process ``pid``'s decoding workers begin."""
    return f"ma{pid}_"


def remove_orphan_blocks() -> int:
    """Unlink the shared memory blocks of processes that are gone (a run killed outright, its resource tracker
    with it, leaves the blocks its reads had in flight); how many. Blocks of live processes are left alone."""
    removed = 0
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return 0
    for name in names:
        match = _BLOCK_NAME.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            os.unlink(f"/dev/shm/{name}")
            removed += 1
        except OSError:
            pass
    return removed


_BLOCK_NAME = re.compile(r"^ma(\d+)_[0-9a-f]+$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _take(name: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """The array in shared memory block ``name``, mapped (not copied); the block's name is unlinked at once,
    and its memory goes when the array does."""
    return np.frombuffer(map_and_unlink(name), np.dtype(dtype), count=math.prod(shape)).reshape(shape)


#: Map every page of a block at once (one call, on the thread taking it) rather than one fault at a time on
#: the thread that first reads each page, the one calling ``predict``.
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def map_and_unlink(name: str, size: int | None = None, *, populate: bool = False) -> mmap.mmap:
    """Shared memory block ``name`` (a worker made it), mapped in this process (``size`` bytes, default all of it),
    its name unlinked at once: its memory goes with the last view of the mapping."""
    path = f"/dev/shm/{name}"
    fd = os.open(path, os.O_RDWR)
    try:
        return mmap.mmap(fd, max(1, os.fstat(fd).st_size if size is None else size), flags=mmap.MAP_SHARED | (_POPULATE if populate else 0))
    finally:
        os.close(fd)
        os.unlink(path)
        resource_tracker.unregister(f"/{name}", "shared_memory")  # registered by the worker that made it


def before_fork() -> None:
    """Before workers that make shared memory blocks are forked: the blocks of processes killed outright are
    removed, and the resource tracker is started here, so that the forks share it (a block a worker
    registers is unregistered when this process unlinks it, and none is reported as leaked at exit)."""
    remove_orphan_blocks()
    resource_tracker.ensure_running()


def _shared_pool(processes: int) -> ProcessPoolExecutor:
    return _POOL.get((processes,), processes)


def _start_worker(parent_pid: int) -> None:
    """In a new worker: end with ``parent_pid``; give freed image buffers back to the system."""
    exit_with_parent(parent_pid)
    lower_priority()
    map_large_allocations()


_POOL = KeptPool(_start_worker, before_fork=before_fork)
