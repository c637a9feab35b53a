"""Item 2: peak RSS of ``predict_dataset`` at two dataset sizes; it must not grow with N.

The dataset is built by this process; each measurement runs ``predict_dataset`` in a
fresh child process (``python -m bench.memory_bench --child ...``) that samples its own
RSS every 5 ms and reports the peak (and ``ru_maxrss``) and the RSS just before the run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from adapter_base import Registry

from .common import REPO, median, png_images

IMAGE_SIZE = 64  # the question is growth with N, not per-item size: small images keep the setup short


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
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


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
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--store", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args(argv)
    print(json.dumps(child(a.store, a.dataset, a.batch_size)))


if __name__ == "__main__":
    main()
