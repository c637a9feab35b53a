"""CPU per item of each stage of ``predict_dataset``, from the CPU time of its threads (``/proc/self/task``).

    python -m bench.stage_cpu [--n 1000] [--repeats 5] [--device-ms 1.5] [--work 0] [--image-size 256] [--store s3]
                              [--config prepare_in_processes=true]

A sampler reads every thread's CPU time (user + system) every 20 ms while the run goes on
and keeps each thread's last figure, named after the thread (``prepare_*``: reading and
decoding, ``write_*``: storing the sets, ``MainThread``: ``predict`` and stamping,
``producer``, ``watchdog``, ...; what threads that lived less than a sample took is the
process's CPU time less theirs and the sampler's own, shown apart). Threads are grouped by name without the
number; the figures are CPU milliseconds per item, median (min-max) over the repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from .common import REPEATS, s3_uri, seaweed_server, tree_cpu

_TICK = os.sysconf("SC_CLK_TCK")


def _thread_cpu(tid: int) -> float | None:
    try:
        with open(f"/proc/self/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return None


def _children_cpu(server_cpu: float = 0.0) -> float:
    """User + system CPU seconds of this process's child processes (the reading, decoding and writing
    workers), less ``server_cpu`` (``tree_cpu`` of an S3 server started by this process and its children)."""
    me = psutil.Process()
    own = me.cpu_times()
    return tree_cpu(me) - own.user - own.system - server_cpu


def _group(name: str) -> str:
    return re.sub(r"[_-]?\d+(_\d+)?$", "", name) or name


class StageSampler:
    """Per-thread CPU seconds of this process while it is active, grouped by thread name."""

    def __init__(self, period_s: float = 0.02) -> None:
        self.period_s = period_s
        self.last: dict[int, tuple[str, float]] = {}
        self.start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stage-sampler", daemon=True)
        self.own_cpu = 0.0

    def _sample(self) -> None:
        for t in threading.enumerate():
            tid = t.native_id
            if tid is None or t is self._thread:
                continue
            cpu = _thread_cpu(tid)
            if cpu is not None:
                # a thread alive at the first sample counts from there, one started later from its start
                self.start.setdefault(tid, cpu if not self._thread.is_alive() else 0.0)
                self.last[tid] = (t.name, cpu)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()
        self.own_cpu = time.thread_time()  # this thread's own: counted apart from the run's

    def __enter__(self) -> "StageSampler":
        self._sample()  # threads alive before the run count from here
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    def by_group(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for tid, (name, cpu) in self.last.items():
            out[_group(name)] = out.get(_group(name), 0.0) + cpu - self.start.get(tid, cpu)
        return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.stage_cpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=REPEATS)
    ap.add_argument("--device-ms", type=float, default=1.5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=256, help="the PNGs' side in pixels (default 256)")
    ap.add_argument("--work", type=int, default=0, help="NumPy layers of model work per item (model-bound; default 0: device wait only)")
    ap.add_argument("--store", choices=("local", "s3"), default="local", help="the local store, or a SeaweedFS S3 server started here (its CPU shown as (S3 server))")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=JSON", help="a configuration key of the run, e.g. prepare_in_processes=true")
    a = ap.parse_args(argv)
    from .models import image_size_error, limit_blas_threads

    if (error := image_size_error(a.image_size)) is not None:
        ap.error(error)
    config = {k: json.loads(v) for k, v in (c.split("=", 1) for c in a.config)}

    from adapter_base import Registry
    from adapter_base.storage import open_store

    limiter = limit_blas_threads(1)  # noqa: F841
    work = Path(tempfile.mkdtemp(prefix="stage-cpu-"))
    os.environ["MODEL_ADAPTER_HOME"] = str(work / "home")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(seaweed_server(work)) if a.store == "s3" else None
        uri = s3_uri() if server is not None else str(work / "store")
        registry = stack.enter_context(Registry(open_store(uri)))
        measure(registry, a, config, server.pid if server is not None else None)
    shutil.rmtree(work, ignore_errors=True)


def measure(registry: Any, a: argparse.Namespace, config: dict[str, Any], server_pid: int | None) -> None:
    """Run ``predict_dataset`` ``a.repeats`` times on a new dataset of ``a.n`` items; print each stage's CPU per item."""
    from .predict_bench import bench_adapter, build_dataset

    ds = build_dataset(registry, a.n, image_size=a.image_size)
    server = psutil.Process(server_pid) if server_pid else None
    per_item: dict[str, list[float]] = {}
    walls = []
    for r in range(a.repeats):
        adapter = bench_adapter(registry, f"stage-cpu-{r}", **{"work": a.work, "device_s_per_item": a.device_ms / 1e3, **config})
        with StageSampler() as sampler:
            t0, c0, s0 = time.perf_counter(), time.process_time(), tree_cpu(server)
            k0 = _children_cpu(s0)
            report = adapter.predict_dataset(ds.id, batch_size=a.batch_size)
            walls.append(time.perf_counter() - t0)
            process_cpu = time.process_time() - c0
            s1 = tree_cpu(server)
            children = _children_cpu(s1) - k0
            server_cpu = s1 - s0
        assert report.ok, report.summary()
        groups = sampler.by_group()
        for g, cpu in groups.items():
            per_item.setdefault(g, []).append(cpu * 1e3 / a.n)
        per_item.setdefault("(process, less this sampler)", []).append((process_cpu - sampler.own_cpu) * 1e3 / a.n)
        per_item.setdefault("(worker processes)", []).append(children * 1e3 / a.n)
        per_item.setdefault("(this sampler)", []).append(sampler.own_cpu * 1e3 / a.n)
        short_lived = process_cpu - sum(groups.values()) - sampler.own_cpu
        per_item.setdefault("(threads too short-lived to sample)", []).append(max(0.0, short_lived) * 1e3 / a.n)
        if server is not None:
            per_item.setdefault("(S3 server)", []).append(server_cpu * 1e3 / a.n)
    print(f"{a.n} items of {a.image_size}x{a.image_size}, {a.store} store, device {a.device_ms} ms/item, work {a.work}, configuration {config}, {a.repeats} repeats; load average {os.getloadavg()}")
    print(f"items/s: median {a.n / statistics.median(walls):.0f} ({a.n / max(walls):.0f}-{a.n / min(walls):.0f})")
    for g, v in sorted(per_item.items(), key=lambda kv: -statistics.median(kv[1])):
        v = v + [0.0] * (a.repeats - len(v))
        print(f"  {g:24s} {statistics.median(v):6.3f} ms/item ({min(v):.3f}-{max(v):.3f})")


if __name__ == "__main__":
    main()
