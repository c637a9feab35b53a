"""Child processes the framework and its tools start (a container engine's API service, test servers)."""

from __future__ import annotations

import os
import subprocess
import threading
import time


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
