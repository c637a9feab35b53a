"""Storing a run's records from a worker process: the predicting process spends neither CPU nor GIL turns on it.

A forked worker opens the run's store anew (``ObjectStore.reopened``: the same location, endpoint,
credentials and settings) and stores each record it is sent with ``ObjectStore.put_json`` (atomic,
as in this process), ``threads`` at a time (requests in flight to a remote store). The records
travel pickled, a chunk per call: the predicting process makes no JSON and opens no file or
connection for them. Each item's outcome comes back: None where its record was stored, else the
error. The workers run below the predicting process's priority (``processes.lower_priority``)
and are forked once, from the thread that starts a run (``WriteProcess.start``), and kept for
the next run on the same store; they end with the process.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable, Sequence

from ..entities import Item
from ..errors import AdapterError, StoreError
from ..processes import KeptPool, exit_with_parent, lower_priority

#: The store key of an item's record.
KeyOf = Callable[[Item, Any], str]

_store: Any = None  # in a worker: the store it opened
_threads: ThreadPoolExecutor | None = None  # in a worker: its writes in flight


class WriteProcess:
    """Records stored on ``processes`` worker processes, each with ``store`` opened anew and ``threads`` writes in flight."""

    def __init__(self, store: Any, key_of: KeyOf, *, processes: int = 1, threads: int = 1) -> None:
        self.store = store
        self.key_of = key_of
        self.processes = processes
        self.threads = threads
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> "WriteProcess":
        """Have the worker processes running (forked now, unless already there for this store); returns self."""
        self._pool = _POOL.get((self.store, self.processes, self.threads), self.processes, self.store, self.threads)
        return self

    def submit(self, chunk: Sequence[tuple[Item, Any]]) -> "Future[list[BaseException | None]]":
        """Store each ``(item, record)`` of ``chunk`` at ``key_of(item, record)``; the future's result: each item's
        error, or None. Raises when the workers are gone (one died, or another store's run replaced them)."""
        if self._pool is None:
            raise RuntimeError("WriteProcess.submit before start")
        return self._pool.submit(_write, [(self.key_of(item, record), record) for item, record in chunk])

    def discard(self) -> None:
        """Forget the workers (the next run forks new ones): after one of them died."""
        if self._pool is not None:
            _POOL.discard(self._pool)


def _start_worker(parent_pid: int, store: Any, threads: int) -> None:
    """In a new worker: end with ``parent_pid``; yield the CPUs to the predicting process; open the store."""
    global _store, _threads
    exit_with_parent(parent_pid)
    lower_priority()
    _store = store.reopened()
    _threads = ThreadPoolExecutor(threads, thread_name_prefix="write") if threads > 1 else None


def _write(records: list[tuple[str, Any]]) -> list[BaseException | None]:
    """In a worker: store each ``(key, record)``; each one's error (one that pickles), or None."""
    return list(_threads.map(_put, records)) if _threads is not None else [_put(r) for r in records]


def _put(entry: tuple[str, Any]) -> BaseException | None:
    key, record = entry
    try:
        _store.put_json(key, record)
        return None
    except Exception as exc:  # noqa: BLE001 - the item's own error, sent back
        return portable(exc)


def portable(exc: BaseException) -> BaseException:
    """``exc`` where its class is one the caller's process rebuilds as it was (Python's own, the framework's),
    else a ``StoreError`` with its text: a third-party class may not be rebuilt from its arguments."""
    if type(exc).__module__ == "builtins" or isinstance(exc, AdapterError):
        return exc
    return StoreError(f"{type(exc).__name__}: {exc}")


_POOL = KeptPool(_start_worker)
