"""Child processes the framework and its tools start (a container engine's API service, test servers)."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> int:
    """Ask ``proc`` to end (SIGTERM), kill it if it has not within ``grace_s``; returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
