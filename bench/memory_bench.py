"""Item 2 (issue 15, target 3; issue 24, point 6): peak RSS of ``predict_dataset`` at two dataset sizes; it must not grow with N.

The dataset is built by this process; each measurement runs ``predict_dataset`` in a
fresh child process (``python -m bench.memory_bench --child ...``) that samples its own
RSS every 5 ms and reports the peak (and the kernel's high-water mark, ``VmHWM``) and the RSS just before the run.
The datasets are listed once after they are built (as an import or any earlier listing
does), so the run reads its item records in pages. The model is cheap (no layers): the
question is what the framework holds, not the model's speed. Repeats are interleaved
(the order of the sizes rotates); each figure is the median with the min-max.

    python -m bench.memory_bench --sizes 1000,100000 --repeats 5   # prints met / missed
    python -m bench.memory_bench --root /tmp/mem --code /work/main  # stores kept for the next call; another checkout's adapter_base
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

from .common import REPO, median, synthetic_images, spread

IMAGE_SIZE = 64  # the question is growth with N, not per-item size: small images keep the setup short
#: Issue 24, point 6: peak RSS at the large N within this factor of the small N's.
RSS_RATIO_TARGET = 1.05


def build(registry: Registry, name: str, n: int) -> str:
    """A dataset of ``n`` small PNG items (kept when the store already has all of them); returns its name."""
    from adapter_base.concurrency import ordered_map
    from adapter_base.errors import NotFoundError

    try:
        if registry.count_items(name) == n:
            return name
    except NotFoundError:
        pass
    images = synthetic_images(16, IMAGE_SIZE)
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
    model = registry.create_model(f"mem-{os.getpid()}-{time.time_ns()}", configuration={"work": 0, "dim": 256})
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


#: Starts a child: this checkout's ``bench`` package, then ``adapter_base`` from the checkout named by argv[1].
_BOOT = "import sys; sys.path.insert(0, sys.argv.pop(1)); import bench; sys.path.insert(0, sys.argv.pop(1)); from bench.memory_bench import main; main()"


def measure(store: str, dataset: str, batch_size: int, env: dict[str, str] | None = None, code: Path = REPO) -> dict[str, Any]:
    """One run in a fresh child process, with ``code``'s ``adapter_base`` (and this checkout's bench)."""
    args = ["--child", "--store", store, "--dataset", dataset, "--batch-size", str(batch_size)]
    cmd = [sys.executable, "-c", _BOOT, str(REPO), str(code), *args]
    out = subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=3600)
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
    code: Path = REPO,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Peak RSS of ``repeats`` runs at each of ``sizes`` (interleaved), and the ratio of the largest size's to the smallest's."""
    out: dict[str, Any] = {"image_size": IMAGE_SIZE, "batch_size": batch_size, "repeats": repeats, "sizes": {}}
    setup: dict[int, float] = {}
    for n in sizes:
        t = time.perf_counter()
        build(registry, f"mem-{n}", n)
        setup[n] = time.perf_counter() - t
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for r in range(repeats):
        for n in sizes[r % len(sizes) :] + sizes[: r % len(sizes)]:  # the order rotates each repeat
            runs[n].append(row := measure(store_uri, f"mem-{n}", batch_size, code=code))
            progress(f"  [{backend}] N={n:,} repeat {r + 1}/{repeats}: peak RSS {row['peak_rss_mib']} MiB (baseline {row['baseline_rss_mib']}), {row['wall_s']} s")
    for n in sizes:
        if any(r["items"] != n or r["failed"] for r in runs[n]):
            raise RuntimeError(f"predict_dataset did not predict all {n} items: {runs[n]}")
        peaks = [r["peak_rss_mib"] for r in runs[n]]
        out["sizes"][str(n)] = {
            "setup_s": round(setup[n], 1),
            "peak_rss_mib": round(median(peaks), 2),
            "peak_rss_spread": spread(peaks),
            "baseline_rss_mib": round(median([r["baseline_rss_mib"] for r in runs[n]]), 2),
            "growth_mib": round(median([r["peak_rss_mib"] - r["baseline_rss_mib"] for r in runs[n]]), 2),
            "items_per_s": round(n / median([r["wall_s"] for r in runs[n]]), 1),
            "runs": runs[n],
        }
        row = out["sizes"][str(n)]
        p = row["peak_rss_spread"]
        progress(
            f"  [{backend}] N={n:,}: peak RSS {p['median']} MiB ({p['min']}-{p['max']}; baseline {row['baseline_rss_mib']}, "
            f"+{row['growth_mib']:.1f}), {row['items_per_s']} items/s"
        )
    lo, hi = min(sizes), max(sizes)
    out["ratio_peak"] = round(out["sizes"][str(hi)]["peak_rss_mib"] / out["sizes"][str(lo)]["peak_rss_mib"], 3)
    # each repeat's large run against the same repeat's small run
    out["ratio_spread"] = spread([a["peak_rss_mib"] / b["peak_rss_mib"] for a, b in zip(runs[hi], runs[lo])], 3)
    out["met"] = out["ratio_peak"] <= RSS_RATIO_TARGET
    rs = out["ratio_spread"]
    progress(
        f"  [{backend}] {'met' if out['met'] else 'MISSED'}: peak RSS at N={hi:,} is {out['ratio_peak']:.3f} x at N={lo:,} "
        f"({out['sizes'][str(hi)]['peak_rss_mib']} vs {out['sizes'][str(lo)]['peak_rss_mib']} MiB; per repeat {rs['median']:.3f}, "
        f"{rs['min']:.3f}-{rs['max']:.3f}; target <= {RSS_RATIO_TARGET}; load average {os.getloadavg()[0]:.2f})"
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
    ap.add_argument("--repeats", type=int, default=1, help="runs of each size, interleaved")
    ap.add_argument("--root", type=Path, help="keep the stores here for the next call (default: a scratch folder, removed)")
    ap.add_argument("--code", type=Path, default=REPO, help="the checkout whose adapter_base the children run")
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.store, a.dataset, a.batch_size)))
        return
    sizes = [int(x) for x in a.sizes.split(",")]
    if len(sizes) < 2 or min(sizes) < 1:
        ap.error(f"--sizes: at least two positive sizes, got {a.sizes!r}")
    run_standalone(sizes, [b for b in a.backends.split(",") if b], a.repeats, a.batch_size, root=a.root, code=a.code.resolve())


def run_standalone(
    sizes: list[int], backends: list[str], repeats: int, batch_size: int, *, root: Path | None = None, code: Path = REPO
) -> dict[str, Any]:
    """Every backend's figures, each in a store under ``root`` (kept), or in a scratch one under ``.bench/`` (removed afterwards)."""
    import contextlib
    import shutil
    import tempfile

    from adapter_base.storage import open_store

    from .common import s3_uri, seaweed_server

    scratch = root or Path(tempfile.mkdtemp(prefix="memory-", dir=REPO / ".bench" if (REPO / ".bench").is_dir() else None))
    scratch.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    try:
        with seaweed_server(scratch) if "s3" in backends else contextlib.nullcontext():
            for backend in backends:
                uri = s3_uri() if backend == "s3" else str(scratch / "store")
                with Registry(open_store(uri)) as registry:
                    out[backend] = run_backend(registry, uri, backend, sizes=sizes, repeats=repeats, batch_size=batch_size, code=code)
    finally:
        if root is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
