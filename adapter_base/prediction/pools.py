"""How many threads and processes a prediction run uses: sized from the CPUs and the store, unless set.

A local disk answers in microseconds: a few threads keep it busy, and every extra thread
takes CPU and GIL turns from the one calling ``predict``. An S3 server answers in
milliseconds (tens on a cloud): throughput there is requests in flight / latency, so many
requests must wait at once (``io_workers``). Reading and decoding images is CPU work that,
in this process, competes with the thread calling ``predict`` for the GIL: when the adapter
keeps the framework's default ``prepare_item_func`` and ``item_bytes``, and worker processes
can reopen the store (local or S3), whole batches are read and decoded in worker processes,
handed back in one shared-memory block per batch (``batch_reader``), as a PyTorch
``DataLoader``'s workers do. Handing each item over on its own (``decode_processes``) cost
more than it saved on 2 CPUs (input stage 423 vs 670 items/s); one block per read did not:
whole ``model-adapter predict`` runs, processes vs threads, 1.25 vs 1.11x a hand-written DataLoader
loop model-bound and 0.85 vs 0.86x device-bound on a local store, 0.74 vs 0.60x and 1.20 vs 0.72x
on S3 (docs/benchmarks.md). ``prepare_in_processes`` forces either way. On a local store the records
are stored from a worker process too (``write_process``): encoding and writing them in this process took
the ``predict`` thread's GIL turns (in-process A/B, 800 items: 457 vs 431 items/s device-bound, 241 vs
227 model-bound). On S3 the processes are started too, and each batch's records go to them only while
``predict`` keeps this process's CPU busy (``writer.PredictShare``): there the write threads' Python
(HTTP requests, ~0.8 ms of CPU a record) took the ``predict`` thread's GIL turns (paired in-process runs,
800 items on SeaweedFS: 150 vs 138 items/s model-bound), while with a model that waits on a device the
threads cost nothing to ``predict`` and the processes' hand-off cost CPU (273 vs 284 items/s device-bound).
``write_in_processes`` forces either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..hooks import AdapterHooks
from ..storage import ObjectStore
from .options import PredictionOptions

#: At most this many decoding processes by default (each holds a Python interpreter, ~60 MiB).
MAX_AUTO_PROCESSES = 8
#: Decode in processes by default only with at least this many CPUs: one for ``predict``, one
#: for this process's I/O threads, the rest for decoding.
MIN_CPUS_FOR_PROCESSES = 4


@dataclass(frozen=True)
class Pools:
    """The threads and processes of one prediction run."""

    prepare_threads: int
    """Threads reading items and preparing them (with decoding processes: waiting for them)."""

    decode_processes: int
    """Processes decoding images for the default ``prepare_item_func`` (0: the prepare threads decode)."""

    write_threads: int
    """Threads writing prediction sets."""

    batch_processes: int = 0
    """Processes reading and preparing a whole batch each, handed back in one shared-memory block (0: not used)."""

    fetch_threads: int = 1
    """Reads in flight in each of those processes (a remote store answers in milliseconds: several at once)."""

    write_processes: int = 0
    """Processes storing the records (``write_process``), ``write_threads`` writes in flight among them (0: the write threads here)."""

    writes_follow_predict: bool = False
    """Records go to the write processes only while ``predict`` keeps this process's CPU busy, else to the write threads."""


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def is_local(store: Any) -> bool:
    """True for a store on a local file system (``file://`` URI)."""
    return str(getattr(store, "uri", "")).startswith("file:")


def uses_default_read(adapter: AdapterHooks) -> bool:
    """True when ``adapter`` keeps the framework's ``item_bytes`` (the store's bytes of the item, which a worker can read too)."""
    return type(adapter).item_bytes is AdapterHooks.item_bytes and "item_bytes" not in vars(adapter)


def uses_default_prepare(adapter: AdapterHooks) -> bool:
    """True when ``adapter`` keeps the framework's ``prepare_item_func`` (neither its class nor the instance replaces it)."""
    return type(adapter).prepare_item_func is AdapterHooks.prepare_item_func and "prepare_item_func" not in vars(adapter)


#: What a worker process calls on the store it reopened.
_WORKER_CALLS = ("get_bytes", "put_bytes", "put_json")


def reopenable(store: Any) -> bool:
    """True for a store a worker process can open again (``ObjectStore.reopened``: local or S3, as configured here),
    with its reads and writes there the same as here: a subclass that changes them but not ``reopened`` (whose
    copy would be of the class that defines it), or a store whose methods were replaced on the object itself,
    keeps its reads and writes in this process."""
    if not str(getattr(store, "uri", "")).startswith(("file:", "s3:")):
        return False
    if any(name in getattr(store, "__dict__", {}) for name in _WORKER_CALLS):
        return False
    cls = type(store)
    owner = next((c for c in cls.__mro__ if "reopened" in vars(c)), ObjectStore)
    return owner is not ObjectStore and all(getattr(cls, name, None) is getattr(owner, name, None) for name in _WORKER_CALLS)


def plan_pools(
    options: PredictionOptions, store: Any, *, default_prepare: bool, cpus: int | None = None, resume: bool = False, default_read: bool = True
) -> Pools:
    """The pools for a run on ``store``: the options' counts where set, else sized for this machine and store.

    Reading and preparing whole batches in worker processes (``batch_processes``, one per CPU up to
    ``MAX_AUTO_PROCESSES``, or ``decode_processes``) is chosen for the default ``prepare_item_func`` on a
    store the workers can reopen, with shared memory, 2 CPUs or more, no resuming and no
    ``decode_processes`` set, unless ``prepare_in_processes`` says otherwise; each read holds to the
    ``prepared_bytes_budget`` (``batch_feed``). Otherwise, automatic sizes: decoding processes = the CPUs less two (at most ``MAX_AUTO_PROCESSES``)
    when the default ``prepare_item_func`` runs on a machine with ``MIN_CPUS_FOR_PROCESSES``
    CPUs or more and shared memory, else none. On a local store: prepare threads = the CPUs when they decode (up to
    ``io_workers``), 2 per decoding process (reading while one waits) otherwise; two write threads.
    On a remote store: ``io_workers`` requests in flight for reading and as many for writing.
    The writes are made by a worker process on a local store a worker can reopen, on 2 CPUs or more
    (``write_processes``), unless ``write_in_processes`` says otherwise. On a remote store two processes
    share the write threads: by default they take a batch's records only while ``predict`` keeps this
    process's CPU busy (``writes_follow_predict``), and all of them where ``write_in_processes`` is on.
    """
    cpus = cpus or cpu_count()
    local = is_local(store)
    write = options.write_workers if options.write_workers is not None else options.io_workers if not local else min(options.io_workers, 2)
    in_processes = options.write_in_processes if options.write_in_processes is not None else cpus >= 2
    write_processes = (1 if local else 2) if in_processes and reopenable(store) else 0
    # on S3 by default, only while predict is CPU-bound here: a model waiting on a device leaves the GIL to the write threads
    follow = bool(write_processes) and not local and options.write_in_processes is None
    batch = default_prepare and default_read and reopenable(store) and shared_memory_available() and options.prepare_in_processes is not False
    if batch and options.prepare_in_processes is None:
        # resuming checks each item's stored result first (on the threads); decode_processes set alone
        # asks for item-by-item decoding processes
        batch = cpus >= 2 and not resume and options.decode_processes is None
    if batch:
        processes = options.decode_processes or min(cpus, MAX_AUTO_PROCESSES)
        fetch = 1 if local else max(2, options.io_workers // processes)  # as many reads in flight as the threads would have
        return Pools(
            prepare_threads=1, decode_processes=0, write_threads=max(1, write), batch_processes=processes, fetch_threads=fetch, write_processes=write_processes,
            writes_follow_predict=follow,
        )
    if options.decode_processes is not None:
        processes = options.decode_processes if default_prepare else 0
    else:
        spare = default_prepare and cpus >= MIN_CPUS_FOR_PROCESSES and shared_memory_available()
        processes = min(cpus - 2, MAX_AUTO_PROCESSES) if spare else 0
    if options.prepare_workers is not None:
        prepare = options.prepare_workers
    elif not local:
        prepare = options.io_workers
    else:
        prepare = min(options.io_workers, 2 * processes if processes else cpus)
    return Pools(
        prepare_threads=max(1, prepare), decode_processes=processes, write_threads=max(1, write), write_processes=write_processes, writes_follow_predict=follow
    )


def shared_memory_available() -> bool:
    """True where POSIX shared memory can be used (``/dev/shm`` on Linux)."""
    return os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
