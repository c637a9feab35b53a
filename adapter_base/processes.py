"""Child processes the framework and its tools start (a container engine's API service, test servers)."""

from __future__ import annotations

import atexit
import multiprocessing
import os
import subprocess
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> int:
    """Ask ``proc`` to end (SIGTERM), kill it if it has not within ``grace_s``; returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """In a forked worker: end this process (``os._exit``) once ``parent_pid`` is gone.

    A worker forked by a process that is then SIGKILLed (a preempted pod, a killed run)
    would otherwise live on as an orphan. Polled from a daemon thread rather than
    ``PR_SET_PDEATHSIG``, which fires when the *thread* that forked the worker ends.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


#: How much lower than the process that forks them the framework's reading and decoding workers
#: run (``nice``): when the CPUs are all busy, the thread calling ``predict`` and the threads
#: writing its results get a CPU first, and the workers take what is left.
WORKER_NICENESS = 5


def lower_priority(step: int = WORKER_NICENESS) -> None:
    """In a forked worker: run ``step`` nice levels below its parent (where the platform allows)."""
    try:
        os.nice(step)
    except (AttributeError, OSError):  # pragma: no cover - no nice here, or not allowed
        pass


class KeptPool:
    """A pool of worker processes forked once and kept for every later run that asks with the same key.

    Forked (not spawned: the workers get the parent's objects, nothing pickled, and the user's
    ``__main__`` is never imported again) from the thread that first asks, every worker at once,
    each started with ``initializer(parent_pid, *initargs)``. Asking with another key replaces
    the pool; ``discard`` forgets it (after a worker died); it is shut down when the process exits.
    """

    def __init__(self, initializer: Callable[..., None], *, before_fork: Callable[[], Any] | None = None) -> None:
        self._initializer = initializer
        self._before_fork = before_fork
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._key: tuple[Any, ...] | None = None
        atexit.register(self.shutdown)

    @property
    def current(self) -> ProcessPoolExecutor | None:
        """The pool kept now, if any."""
        return self._pool

    def get(self, key: tuple[Any, ...], processes: int, *initargs: Any) -> ProcessPoolExecutor:
        """The pool for ``key`` (``processes`` workers started with ``initargs``), forked now if not kept."""
        with self._lock:
            if self._pool is None or self._key != key:
                if self._before_fork is not None:
                    self._before_fork()
                fork = multiprocessing.get_context("fork")
                pool = ProcessPoolExecutor(processes, mp_context=fork, initializer=self._initializer, initargs=(os.getpid(), *initargs))
                old, self._pool, self._key = self._pool, pool, key
                if old is not None:
                    old.shutdown(wait=False, cancel_futures=False)
                for started in [pool.submit(int) for _ in range(processes)]:
                    started.result()  # every worker forked now, from this thread
            return self._pool

    def discard(self, pool: ProcessPoolExecutor | None = None) -> None:
        """Forget the kept pool (only if it is ``pool``, when given): the next ``get`` forks new workers."""
        with self._lock:
            if self._pool is None or (pool is not None and self._pool is not pool):
                return
            old, self._pool, self._key = self._pool, None, None
        old.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the kept pool's workers, waiting for them."""
        with self._lock:
            pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
