"""Item 2 (issue 15, target 3): peak RSS of ``predict_dataset`` at two dataset sizes; it must not grow with N.

The dataset is built by this process; each measurement runs ``predict_dataset`` in a
fresh child process (``python -m bench.memory_bench --child ...``) that samples its own
RSS every 5 ms and reports the peak (and the kernel's high-water mark, ``VmHWM``) and the RSS just before the run.
The datasets are listed once after they are built (as an import or any earlier listing
does), so the run reads its item records in pages.

    python -m bench.memory_bench --sizes 1000,100000 --backends local   # prints met / missed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from adapter_base import Registry

from .common import REPO, median, png_images

IMAGE_SIZE = 64  # the question is growth with N, not per-item size: small images keep the setup short
#: Target 3 of issue 15: peak RSS at the large N within this factor of the small N's.
RSS_RATIO_TARGET = 1.1


def build(registry: Registry, name: str, n: int) -> str:
    """A dataset of ``n`` small PNG items; returns its name."""
    from adapter_base.concurrency import ordered_map

    images = png_images(16, IMAGE_SIZE)
    ds = registry.create_dataset(name)
    with ThreadPoolExecutor(16) as pool:
        def add(i: int) -> None:
            registry.add_item(ds, f"img/{i:06d}.png", images[i % len(images)], item_id=f"{i:08d}")

        for _, res in ordered_map(add, range(n), pool=pool, window=64):
            if isinstance(res, BaseException):
                raise res
    registry.count_items(ds)  # the listing that writes the record pages
    return name


def child(store: str, dataset: str, batch_size: int) -> dict[str, Any]:
    import psutil

    from .models import CostModelAdapter, limit_blas_threads

    limiter = limit_blas_threads(1)  # noqa: F841 - kept alive for the run
    proc = psutil.Process()
    registry = Registry.open(store)
    model = registry.create_model(f"mem-{os.getpid()}", configuration={"work": 1, "dim": 256})
    adapter = CostModelAdapter(registry=registry)
    adapter.load_from_model(model)
    ds = registry.get_dataset(dataset)
    # Everything imported and warm (one item fetched by id: no listing yet) before the baseline.
    adapter.predict_items([registry.get_item(ds.id, f"{0:08d}")], save_report=False)
    baseline = proc.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    report = adapter.predict_dataset(ds, batch_size=batch_size)
    wall = time.perf_counter() - t
    stop.set()
    sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    registry.close()
    return {
        "items": report.succeeded,
        "failed": report.failed,
        "wall_s": round(wall, 3),
        "baseline_rss_mib": round(baseline / 2**20, 1),
        "peak_rss_mib": round(peak[0] / 2**20, 1),
        # The kernel's own high-water mark of this process (VmHWM). Not ru_maxrss: Linux starts a
        # child's from its parent's RSS at fork, so every child of a large parent reported the same.
        "hwm_rss_mib": round(_vm_hwm_kib() / 1024, 1),
    }


def _vm_hwm_kib() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def measure(store: str, dataset: str, batch_size: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.memory_bench", "--child", "--store", store, "--dataset", dataset, "--batch-size", str(batch_size)]
    out = subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"memory child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_backend(
    registry: Registry,
    store_uri: str,
    backend: str,
    *,
    sizes: list[int],
    repeats: int,
    batch_size: int = 16,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    out: dict[str, Any] = {"image_size": IMAGE_SIZE, "batch_size": batch_size, "repeats": repeats, "sizes": {}}
    for n in sizes:
        t = time.perf_counter()
        name = build(registry, f"mem-{n}", n)
        setup = time.perf_counter() - t
        runs = [measure(store_uri, name, batch_size) for _ in range(repeats)]
        if any(r["items"] != n or r["failed"] for r in runs):
            raise RuntimeError(f"predict_dataset did not predict all {n} items: {runs}")
        out["sizes"][str(n)] = {
            "setup_s": round(setup, 1),
            "peak_rss_mib": median([r["peak_rss_mib"] for r in runs]),
            "baseline_rss_mib": median([r["baseline_rss_mib"] for r in runs]),
            "growth_mib": median([r["peak_rss_mib"] - r["baseline_rss_mib"] for r in runs]),
            "items_per_s": round(n / median([r["wall_s"] for r in runs]), 1),
            "runs": runs,
        }
        row = out["sizes"][str(n)]
        progress(f"  [{backend}] N={n}: peak RSS {row['peak_rss_mib']} MiB (baseline {row['baseline_rss_mib']}, +{row['growth_mib']:.1f}), {row['items_per_s']} items/s")
    lo, hi = str(min(sizes)), str(max(sizes))
    out["ratio_peak"] = round(out["sizes"][hi]["peak_rss_mib"] / out["sizes"][lo]["peak_rss_mib"], 3)
    out["met"] = out["ratio_peak"] <= RSS_RATIO_TARGET
    progress(
        f"  [{backend}] {'met' if out['met'] else 'MISSED'}: peak RSS at N={int(hi):,} is {out['ratio_peak']:.3f} x at N={int(lo):,} "
        f"({out['sizes'][hi]['peak_rss_mib']} vs {out['sizes'][lo]['peak_rss_mib']} MiB; target <= {RSS_RATIO_TARGET})"
    )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.memory_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--sizes", default="1000,100000", help="dataset sizes to compare (default 1000,100000)")
    ap.add_argument("--backends", default="local", help="stores: local, s3 (a SeaweedFS started here)")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.store, a.dataset, a.batch_size)))
        return
    run_standalone([int(x) for x in a.sizes.split(",")], [b for b in a.backends.split(",") if b], a.repeats, a.batch_size)


def run_standalone(sizes: list[int], backends: list[str], repeats: int, batch_size: int) -> dict[str, Any]:
    """Every backend's figures, each in a scratch store under ``.bench/`` (removed afterwards)."""
    import contextlib
    import shutil
    import tempfile

    from adapter_base.storage import open_store

    from .common import s3_uri, seaweed_server

    scratch = Path(tempfile.mkdtemp(prefix="memory-", dir=REPO / ".bench" if (REPO / ".bench").is_dir() else None))
    out: dict[str, Any] = {}
    try:
        with seaweed_server(scratch) if "s3" in backends else contextlib.nullcontext():
            for backend in backends:
                uri = s3_uri() if backend == "s3" else str(scratch / "store")
                with Registry(open_store(uri)) as registry:
                    out[backend] = run_backend(registry, uri, backend, sizes=sizes, repeats=repeats, batch_size=batch_size)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
