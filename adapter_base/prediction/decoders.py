"""Decoding images in worker processes; the arrays come back through shared memory, not pickled.

A worker decodes an item's bytes exactly as the default ``prepare_item_func`` does
(``media.decode_image``: EXIF orientation, RGB, the byte budget checked from the header)
into a ``multiprocessing.shared_memory`` block and returns only its name, shape and dtype;
the caller copies the pixels out of the block once and unlinks it. A ``ValidationError``
from the worker is raised again, unchanged, in the caller.

The processes are forked once, from the thread that starts a run, before the run's own
threads exist (``ProcessDecoder.start``), as a PyTorch ``DataLoader`` forks its workers: a
fork costs milliseconds, and unlike ``spawn`` it never re-imports the user's ``__main__``
(a script without an ``if __name__ == "__main__"`` guard would run again in each worker).
They are kept for the next run and end with the process.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import secrets
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..media import decode_image
from ..processes import exit_with_parent

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


class ProcessDecoder:
    """``decode_image`` run on ``processes`` worker processes (shared by every run of this process)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes

    def start(self) -> "ProcessDecoder":
        """Have the worker processes running (forked now, unless already there); returns self."""
        _shared_pool(self.processes)
        return self

    def decode_image(self, data: bytes, *, what: str = "item", max_bytes: int | None = None) -> np.ndarray:
        """What ``media.decode_image(data, what=what, max_bytes=max_bytes)`` returns, decoded in a worker process."""
        pool = _shared_pool(self.processes)
        try:
            name, shape, dtype = pool.submit(_decode_to_shared_memory, data, what, max_bytes).result()  # re-raises its ValidationError
        except BrokenProcessPool:
            _discard(pool)
            raise RuntimeError(f"{what}: the image decoding process died (out of memory?); the next items get a new one") from None
        return _take(name, shape, dtype)


def _decode_to_shared_memory(data: bytes, what: str, max_bytes: int | None) -> tuple[Any, ...]:
    """In the worker: decode into a new shared memory block; ``(name, shape, dtype)``."""
    arr = decode_image(data, what=what, max_bytes=max_bytes)
    shm = shared_memory.SharedMemory(name=block_prefix(os.getppid()) + secrets.token_hex(6), create=True, size=max(1, arr.nbytes))
    try:
        np.ndarray(arr.shape, arr.dtype, buffer=shm.buf)[...] = arr
        return (shm.name, arr.shape, arr.dtype.str)
    finally:
        shm.close()  # the caller unlinks it


def block_prefix(pid: int) -> str:
    """How the names of the shared memory blocks of process ``pid``'s decoding workers begin."""
    return f"ma{pid}_"


def _take(name: str, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """The array in shared memory block ``name``, copied out; the block is unlinked."""
    shm = shared_memory.SharedMemory(name=name)
    try:
        view = np.ndarray(shape, np.dtype(dtype), buffer=shm.buf)
        out = view.copy()
        del view
    finally:
        shm.close()
        shm.unlink()
    return out


def _shared_pool(processes: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != processes:
            # One resource tracker for the workers and this process (the forks inherit it): a block
            # registered by a worker is unregistered when this process unlinks it, and none is
            # reported as leaked at exit.
            resource_tracker.ensure_running()
            fork = multiprocessing.get_context("fork")
            pool = ProcessPoolExecutor(processes, mp_context=fork, initializer=exit_with_parent, initargs=(os.getpid(),))
            old, _pool, _pool_size = _pool, pool, processes
            if old is not None:
                old.shutdown(wait=False, cancel_futures=False)
            _pool.submit(int).result()  # fork every worker now, from this thread
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False)


@atexit.register
def _shutdown() -> None:
    with _lock:
        pool = _pool
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
