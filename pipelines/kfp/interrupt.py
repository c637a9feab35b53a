"""Stopping a local pipeline run at once when the user presses Ctrl-C.

``kfp.local`` retries a failed step with backoff, and a ``ParallelFor`` runs its iterations
on threads the interpreter waits for: interrupted, a run used to go on retrying its shards.
``StepProcesses`` runs every step subprocess itself (in place of ``kfp.local``'s
``run_local_subprocess``) so it knows them; on Ctrl-C it stops them (SIGINT, so a step can
record its failure and keep its checkpoints, then SIGKILL after a grace period), removes
the run's containers (labelled ``RUN_LABEL``), starts no further step and cuts every retry
wait short, so the run unwinds in seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import types
import uuid
from typing import Any, Iterator

from ..engine import Engine

log = logging.getLogger(__name__)

#: The label of every container a local run starts (its value: the run's token).
RUN_LABEL = "model-adapter.local-run"
#: Seconds a step gets to exit after its SIGINT before it is killed.
STOP_GRACE_S = 3.0
#: The exit status a step refused after the interruption reports (128 + SIGINT).
INTERRUPTED_STATUS = 130


class StepProcesses:
    """The step processes and containers of one local run, and how to stop them all."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine
        self.token = uuid.uuid4().hex[:12]
        self.interrupted = threading.Event()
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    @property
    def labels(self) -> dict[str, str]:
        """Labels for the run's containers."""
        return {RUN_LABEL: self.token}

    # --- kfp.local's hooks ----------------------------------------------------------

    def run_step(self, full_command: list[str], env_vars: dict[str, str] | None = None) -> int:
        """Run one step as ``kfp.local`` does (its output line by line to ``print``); refused once interrupted."""
        if self.interrupted.is_set():
            return INTERRUPTED_STATUS
        env = {**os.environ, **env_vars} if env_vars else None
        # Its own process group: the step is ``sh -c ... python3 -m kfp...``, and a signal must reach the
        # Python under the shell, not only the shell (Ctrl-C reaches the group through ``interrupt``).
        with subprocess.Popen(
            full_command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env, start_new_session=True
        ) as process:
            with self._lock:
                self._procs.add(process)
            try:
                if self.interrupted.is_set():  # interrupted while it started
                    self._signal(process)
                assert process.stdout is not None
                for line in iter(process.stdout.readline, ""):
                    print(line, end="")
                print("\n")
                return process.wait()
            finally:
                with self._lock:
                    self._procs.discard(process)

    def sleep(self, seconds: float) -> None:
        """A retry's backoff wait, cut short by the interruption."""
        self.interrupted.wait(seconds)

    # --- stopping ---------------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop the run: no new step, no more waiting, SIGINT to the running steps (killed after ``STOP_GRACE_S``), containers removed."""
        if self.interrupted.is_set():
            return
        self.interrupted.set()
        with self._lock:
            running = list(self._procs)
        for process in running:
            self._signal(process)
        threading.Thread(target=self._kill_after_grace, args=(running,), name="stop-steps", daemon=True).start()
        self.remove_containers()

    def _signal(self, process: subprocess.Popen, sig: int = signal.SIGINT) -> None:
        """``sig`` to the step's whole process group."""
        with contextlib.suppress(OSError):
            os.killpg(process.pid, sig)

    def _kill_after_grace(self, running: list[subprocess.Popen]) -> None:
        deadline = time.monotonic() + STOP_GRACE_S
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("step process %d did not stop within %.0fs of Ctrl-C: killing it", process.pid, STOP_GRACE_S)
                self._signal(process, signal.SIGKILL)

    def remove_containers(self) -> None:
        """Remove the run's containers (``--runner docker``), running or not."""
        if self.engine is None:
            return
        listed = self.engine.run("ps", "-aq", "--filter", f"label={RUN_LABEL}={self.token}", check=False, timeout=30)
        ids = listed.stdout.split() if listed.returncode == 0 else []
        if ids:
            self.engine.run("rm", "-f", *ids, check=False, timeout=60)

    def alive(self) -> list[int]:
        """Process ids of step processes still running."""
        with self._lock:
            return [p.pid for p in self._procs if p.poll() is None]

    # --- installing -------------------------------------------------------------------

    @contextlib.contextmanager
    def installed(self) -> Iterator["StepProcesses"]:
        """Route ``kfp.local``'s step processes and retry waits through this object, and Ctrl-C to ``interrupt``, for the block."""
        from kfp.local import subprocess_task_handler
        from kfp.local.orchestrator import task_executor

        clock: Any = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
        clock.sleep = self.sleep
        saved = (subprocess_task_handler.run_local_subprocess, task_executor.time)
        subprocess_task_handler.run_local_subprocess = self.run_step
        task_executor.time = clock
        previous = None
        if threading.current_thread() is threading.main_thread():

            def on_sigint(signum: int, frame: Any) -> None:
                self.interrupt()
                raise KeyboardInterrupt

            previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield self
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            subprocess_task_handler.run_local_subprocess, task_executor.time = saved
