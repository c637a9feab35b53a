"""``python -m bench``: run the benchmarks, write ``bench/results/latest.json`` and ``docs/benchmarks.md``.

    python -m bench                      # everything, full sizes, 5 interleaved repeats
    python -m bench --quick              # small sizes, one repeat; writes under .bench/ (not the committed files)
    python -m bench.regression           # then: name every row > 15% worse than the committed results
    python -m bench --only predict,artifacts --n 2000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .common import REPEATS, REPO, fmt_spread, gpu_status, machine_info, s3_uri, seaweed_server

SECTIONS = ("predict", "user", "memory", "artifacts", "pipeline", "torch", "latency", "s3bulk")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes and one repeat (a smoke run); outputs go under .bench/")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections among {', '.join(SECTIONS)}")
    ap.add_argument("--n", type=int, default=None, help="items per prediction run (default 600; quick 160)")
    ap.add_argument("--repeats", type=int, default=None, help=f"interleaved repeats of every measure (default {REPEATS}; quick 1)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--backends", default="s3,local", help="stores for the prediction runs")
    ap.add_argument("--no-ray", dest="ray", action="store_false", help="leave out the Ray Data rows (Ray starts in ~10 s and takes ~1 GiB)")
    ap.add_argument("--memory-sizes", default=None, help="dataset sizes for peak RSS (default 1000,20000; quick 200,1000)")
    ap.add_argument("--memory-repeats", type=int, default=None, help=f"runs of each peak-RSS size (default {REPEATS}; quick 1)")
    ap.add_argument("--memory-backends", default=None, help="stores for peak RSS (default local,s3; quick local)")
    ap.add_argument("--large-mb", type=int, default=None, help="size of the large artifact (default 500; quick 32)")
    ap.add_argument("--small-files", type=int, default=None, help="number of small artifact files (default 2000; quick 100)")
    ap.add_argument("--small-kib", type=int, default=16, help="size of each small artifact file")
    ap.add_argument("--latency-n", type=int, default=None, help="items predicted through the 20 ms latency proxy (default 2000; quick 300)")
    ap.add_argument("--bulk-count", type=int, default=None, help="small objects per size in the S3 bulk I/O bench (default 2000; quick 100)")
    ap.add_argument("--torch-n", type=int, default=None, help="items for the PyTorch example run (default 512; quick 64)")
    ap.add_argument("--user-sizes", default=None, help="the user's comparison: small,large dataset sizes (default 200,1000; quick 16,48)")
    ap.add_argument("--user-repeats", type=int, default=None, help=f"repeats of the user's comparison (default {REPEATS}; quick 1)")
    ap.add_argument("--json", default=None, help="results file (default bench/results/latest.json; quick .bench/quick.json)")
    ap.add_argument("--markdown", default=None, help="Markdown table (default docs/benchmarks.md; quick .bench/quick.md)")
    ap.add_argument("--workdir", default=str(REPO / ".bench"), help="scratch space (removed afterwards)")
    a = ap.parse_args(argv)
    q = a.quick
    a.n = a.n or (160 if q else 600)
    a.repeats = a.repeats or (1 if q else REPEATS)
    a.memory_repeats = a.memory_repeats or (1 if q else REPEATS)
    a.memory_sizes = [int(x) for x in (a.memory_sizes or ("200,1000" if q else "1000,20000")).split(",")]
    a.memory_backends = [x for x in (a.memory_backends or ("local" if q else "local,s3")).split(",") if x]
    a.large_mb = a.large_mb or (32 if q else 500)
    a.small_files = a.small_files or (100 if q else 2000)
    a.torch_n = a.torch_n or (64 if q else 512)
    a.bulk_count = a.bulk_count or (100 if q else 2000)
    a.latency_n = a.latency_n or (300 if q else 2000)
    a.user_sizes = [int(x) for x in (a.user_sizes or ("16,48" if q else "200,1000")).split(",")]
    a.user_repeats = a.user_repeats or (1 if q else REPEATS)
    a.json = Path(a.json or (REPO / (".bench/quick.json" if q else "bench/results/latest.json")))
    a.markdown = Path(a.markdown or (REPO / (".bench/quick.md" if q else "docs/benchmarks.md")))
    a.only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = set(a.only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    a.backends = [b for b in a.backends.split(",") if b]
    return a


def say(msg: str) -> None:
    print(msg, flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .models import limit_blas_threads

    limiter = limit_blas_threads(1)  # noqa: F841 - see bench/models.py: the model is one core's work
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    os.environ["MODEL_ADAPTER_HOME"] = str(scratch / "home")
    os.environ.pop("MODEL_ADAPTER_STORE", None)
    started = time.time()
    results: dict[str, Any] = {
        "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "config": {
            "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
            "n": a.n,
            "repeats": a.repeats,
            "batch_size": a.batch_size,
            "memory_sizes": a.memory_sizes,
            "memory_repeats": a.memory_repeats,
            "large_mb": a.large_mb,
            "small_files": a.small_files,
            "small_kib": a.small_kib,
            "quick": a.quick,
        },
    }
    need_s3 = (("predict" in a.only or "user" in a.only) and "s3" in a.backends) or ("memory" in a.only and "s3" in a.memory_backends) or "artifacts" in a.only
    try:
        with (seaweed_server(scratch) if need_s3 else _nothing()) as server:
            if "predict" in a.only:
                from adapter_base import Registry
                from adapter_base.storage import open_store

                from . import baselines, predict_bench

                say(f"== 1. predict_dataset against a PyTorch DataLoader loop, the naive loop and Ray Data: {a.n} items, {a.repeats} repeat(s)")
                ray = baselines.start_ray() if a.ray else "skipped (--no-ray)"
                if isinstance(ray, str):
                    say(f"  Ray Data: {ray}; its rows are left out")
                results["predict"] = {}
                try:
                    for backend in a.backends:
                        uri = s3_uri() if backend == "s3" else str(scratch / "predict-store")
                        with Registry(open_store(uri)) as registry:
                            results["predict"][backend] = predict_bench.run_backend(
                                registry, backend, uri, n=a.n, repeats=a.repeats, batch_size=a.batch_size,
                                server_pid=server.pid if backend == "s3" else None, ray=ray, progress=say,
                            )
                finally:
                    if not isinstance(ray, str):
                        ray.close()
            if "user" in a.only:
                from adapter_base import Registry
                from adapter_base.storage import open_store

                from . import user_compare

                small, large = a.user_sizes
                say(f"== 1b. the user's comparison: model-adapter predict processes vs a hand-written DataLoader loop process, "
                    f"steady state from {small} and {large} items, {a.user_repeats} repeat(s)")  # fmt: skip
                results["user_compare"] = {}
                for backend in a.backends:
                    uri = s3_uri() if backend == "s3" else str(scratch / "user-store")
                    with Registry(open_store(uri)) as registry:
                        results["user_compare"][backend] = user_compare.run_backend(
                            registry, backend, uri, scratch, small=small, large=large, repeats=a.user_repeats, batch_size=a.batch_size, progress=say
                        )
            if "memory" in a.only:
                from adapter_base import Registry
                from adapter_base.storage import open_store

                from . import memory_bench
                from .report import memory_spreads

                say(f"== 2. peak RSS of predict_dataset at N = {a.memory_sizes}")
                results["memory"] = {}
                for backend in a.memory_backends:
                    uri = s3_uri() if backend == "s3" else str(scratch / "memory-store")
                    with Registry(open_store(uri)) as registry:
                        results["memory"][backend] = memory_bench.run_backend(
                            registry, uri, backend, sizes=a.memory_sizes, repeats=a.memory_repeats, batch_size=a.batch_size, progress=say
                        )
                        for n, row in results["memory"][backend]["sizes"].items() if a.memory_repeats > 1 else ():
                            peak, rate = memory_spreads(int(n), row)
                            say(f"  [{backend}] N={n}, {a.memory_repeats} runs: peak RSS {fmt_spread(peak, '.1f')} MiB, {fmt_spread(rate)} items/s")
            if "artifacts" in a.only:
                from . import artifacts_bench

                say(f"== 3. artifact transfer: 1 x {a.large_mb} MiB, {a.small_files} x {a.small_kib} KiB")
                results["artifacts"] = {}
                for shape in ("large", "small"):
                    results["artifacts"][shape] = artifacts_bench.run_shape(
                        shape, server, scratch, repeats=a.repeats, large_mb=a.large_mb,
                        small_count=a.small_files, small_kib=a.small_kib, progress=say,
                    )
        if "pipeline" in a.only:
            from . import pipeline_bench

            say("== 4. pipeline overhead: train DAG under kfp.local vs in-process")
            results["pipeline"] = pipeline_bench.run(scratch, repeats=a.repeats, progress=say)
        results["gpu"] = gpu_status()
        say(f"== GPU: {results['gpu']['status']}")
        if "torch" in a.only:
            from . import torch_gpu


            if torch_gpu.torch_available():
                say(f"== 5. PyTorch example: predict_items vs a plain PyTorch loop ({a.torch_n} items)")
                results["torch_gpu"] = torch_gpu.run(scratch, n=a.torch_n, repeats=a.repeats, progress=say)
            else:
                say("== 5. PyTorch example: skipped (torch is not installed: pip install -e '.[torch]')")
        if "latency" in a.only:
            from . import latency_bench

            say(f"== 6. cloud latency: {a.latency_n} items through a {latency_bench.LATENCY_MS:g} ms-per-request proxy in front of SeaweedFS, {a.repeats} run(s)")
            results["latency"] = latency_bench.run(scratch, n=a.latency_n, batch_size=a.batch_size, repeats=a.repeats, progress=say)
        if "s3bulk" in a.only:
            from . import s3_bulk_bench

            say(f"== 7. bulk small-object I/O on S3: minio vs obstore, {a.bulk_count} objects per size, loopback and through the latency proxy")
            results["s3_bulk"] = s3_bulk_bench.run(scratch, count=a.bulk_count, repeats=1 if a.quick else max(5, a.repeats), progress=say)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["duration_s"] = round(time.time() - started, 1)
    results["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    from .report import evaluate_targets, write_markdown

    results["targets"] = evaluate_targets(results)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(a.markdown, results)
    say(f"wrote {a.json} and {a.markdown} in {results['duration_s']:.0f}s")
    for t in results["targets"]:
        mark = "n/a " if t["met"] is None else "ok  " if t["met"] else "MISS"
        figure = t.get("detail") if t["value"] is None else f"{t['value']}" + (f" ({t['detail']})" if t.get("detail") else "")
        say(f"  {mark} {t['target']} [{t['case']}]: {figure} (limit {t['limit']})")
    return results


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
