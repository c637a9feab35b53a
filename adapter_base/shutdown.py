"""Ending this process once its work is done, whatever threads the adapter's code left running.

Python waits for every non-daemon thread before it exits: one that an adapter started in
``load`` or ``predict`` and never stopped would keep a finished CLI command, or a pipeline
step whose outputs are written, running forever (a pod that never completes).
``exit_when_done`` is for a process's entry point (the CLI, a pipeline step), never for a
library call: once the main thread is done, leftover threads get a short grace, those still
running are named in one warning, logging and stdio are flushed and the process exits with
its exit code.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

log = logging.getLogger(__name__)

#: Seconds leftover threads get to end on their own once the main thread is done.
JOIN_GRACE_S = 1.0

_exit_code: int | None = None
_installed = False


def exit_when_done(code: int | None = None) -> None:
    """Make this process exit when its main thread is done, even if non-daemon threads are still running.

    ``code``: the exit code to exit with then (a later call replaces it); None: 1 after an
    uncaught exception, else 0. With no thread left over, Python exits as usual.
    It runs when the interpreter shuts down, before Python would wait for the threads, so
    whatever the main thread wrote (run reports, a step's outputs, closed stores) is complete.
    """
    global _exit_code, _installed
    _exit_code = code
    if _installed:
        return
    register = getattr(threading, "_register_atexit", None)  # runs before non-daemon threads are joined
    if register is None:  # pragma: no cover - CPython has had it since 3.9
        return
    register(_exit_despite_leftovers)
    _installed = True


def leftover_threads() -> list[threading.Thread]:
    """The non-daemon threads still running, other than the main thread and the calling one."""
    skip = {threading.main_thread(), threading.current_thread()}
    return [t for t in threading.enumerate() if not t.daemon and t.is_alive() and t not in skip]


def _exit_despite_leftovers() -> None:
    threads = leftover_threads()
    if not threads:
        return
    _stop_idle_pool_workers()
    deadline = time.monotonic() + JOIN_GRACE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    threads = [t for t in threads if t.is_alive()]
    if not threads:
        return
    code = _exit_code if _exit_code is not None else (1 if getattr(sys, "last_value", None) is not None else 0)
    names = ", ".join(repr(t.name) for t in threads)
    log.warning(
        "exiting with code %d although %d thread(s) the adapter started are still running: %s "
        "(non-daemon threads left by load, train or predict; stop them, or start them with daemon=True)",
        code,
        len(threads),
        names,
    )
    logging.shutdown()  # flushes every handler
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed or broken stream: nothing more to write
            pass
    os._exit(code)


def _stop_idle_pool_workers() -> None:
    """Let idle ``ThreadPoolExecutor`` workers and ``ProcessPoolExecutor`` manager threads (the framework keeps its
    reading processes between runs) end now, as Python's own exit would, so only busy threads are left over.

    Python wakes them only after the hooks run before its join (this is one); the modules'
    exit flags and wake-ups are private, so their absence just leaves idle workers to the grace.
    """
    from concurrent.futures import process as pool_processes
    from concurrent.futures import thread as pool_threads

    queues = getattr(pool_threads, "_threads_queues", None)
    if queues is not None and hasattr(pool_threads, "_shutdown"):
        pool_threads._shutdown = True  # type: ignore[attr-defined]
        for q in list(queues.values()):
            q.put(None)
    stop_processes = getattr(pool_processes, "_python_exit", None)
    if stop_processes is not None:  # wakes each pool's manager thread and joins it: not past the grace (a busy worker)
        stopper = threading.Thread(target=stop_processes, name="stop-process-pools", daemon=True)
        stopper.start()
        stopper.join(JOIN_GRACE_S)
