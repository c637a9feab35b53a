"""The user's comparison: whole ``model-adapter predict`` processes against a hand-written PyTorch loop process.

For each store (local, SeaweedFS S3) and cost model (``model_bound``: NumPy work of ~2x
reading + decoding one item on one core; ``device_bound``: a wait of ~1x that, GIL and CPU
free), both programs run as fresh processes on a dataset of ``small`` and of ``large``
distinct PNGs, each writing new predictions (a new model per run):

- ``predict``: ``model-adapter predict MODEL --dataset DS --store URI --allow-untrained``,
  default settings;
- ``user_loop``: ``python -m bench.user_loop`` (``bench/user_loop.py``: PIL decoding in
  ``DataLoader(num_workers=2)`` workers, the model in the main process, one ``json.dump`` per
  item from a thread pool); on S3 its ``Dataset`` is AWS's ``s3torchconnector.S3MapDataset``
  (``loop_reader``; ``minio``: a ``GET`` per item with the plain minio client).

Steady state items/s = (large - small) / (t(large) - t(small)), which cancels start-up
(interpreter, imports, forking the workers) and the first batches. Every repeat runs every
(program, size) in a rotating order. The figure is the rate from each size's median time,
with the min-max of each repeat's own rate beside it; the ratio is of those figures. ``model_only``: the
model's own bound, ``predict`` on prepared batches in this process (one BLAS thread), items/s.
Both child processes run with one BLAS thread (``OPENBLAS_NUM_THREADS=1`` and friends).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from adapter_base import Registry
from adapter_base.registry import layout

from .common import IMAGE_FORMATS, REPEATS, REPO, spread
from .models import image_size_error, limit_blas_threads
from .predict_bench import bench_adapter, build_dataset, calibrate, model_cost

PROGRAMS = ("predict", "user_loop")
SETTINGS: dict[str, tuple[str, float]] = {"model_bound": ("numpy", 2.0), "device_bound": ("device", 1.0)}
#: Issue 24's targets: predict's steady-state rate over the loop's (>=), per setting; and over the model's own bound.
TARGETS = {"device_bound": 1.2, "model_bound": 1.0}
MODEL_BOUND_TARGET = 0.95
ADAPTER = "bench.models:CostModelAdapter"
READER_NAMES = {"s3torch": "AWS's `s3torchconnector.S3MapDataset`", "minio": "a GET per item with the plain minio client"}
_ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def _child_env() -> dict[str, str]:
    env = dict(os.environ, **_ONE_THREAD)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("model-adapter")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pipelines.cli"]


def _timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_child_env(), capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... exited {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}")
    return wall


def model_only_rate(adapter: Any, prepared: list[list[Any]], n: int, batch_size: int) -> float:
    """Items/s of the model alone on prepared batches, in this thread."""
    t0 = time.perf_counter()
    for b in range(0, n, batch_size):
        adapter.predict(prepared[(b // batch_size) % len(prepared)])
    return n / (time.perf_counter() - t0)


def run_backend(
    registry: Registry,
    backend: str,
    uri: str,
    workdir: Path,
    *,
    small: int = 200,
    large: int = 1000,
    repeats: int = REPEATS,
    batch_size: int = 16,
    image_size: int = 256,
    image_format: str = "png",
    settings: dict[str, tuple[str, float]] | None = None,
    variants: dict[str, dict[str, Any]] | None = None,
    loop_reader: str = "s3torch",
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every (setting, program, size) ``repeats`` times interleaved; steady-state rates and ratios.

    ``variants``: more ``model-adapter predict`` rows, each named and with configuration keys of its
    own (``{"threads": {"prepare_in_processes": False}}``), measured the same way; a variant with a
    ``loop_reader`` key is one more hand-written loop reading that way (on S3 by default:
    ``user_loop_minio``, the loop reading with the plain minio client, beside the s3torchconnector one).
    """
    settings = settings or SETTINGS
    variants = dict(variants or {})
    if uri.startswith("s3://") and loop_reader != "minio":
        variants.setdefault("user_loop_minio", {"loop_reader": "minio"})
    programs = (*PROGRAMS, *variants)
    limiter = limit_blas_threads(1)  # noqa: F841 - the model-only bound on one BLAS thread, as in the children
    datasets = {n: build_dataset(registry, n, image_size=image_size, image_format=image_format, name=f"user-compare-{n}-{uuid.uuid4().hex[:6]}") for n in (small, large)}
    keys = {}
    for n, ds in datasets.items():
        path = workdir / f"items-{backend}-{n}.json"
        path.write_text(json.dumps([layout.item_binary(it.dataset_id, it.id) for it in registry.iter_items(ds)]))
        keys[n] = path
    items = list(registry.iter_items(datasets[large]))
    probe = bench_adapter(registry, f"user-compare-calibration-{uuid.uuid4().hex[:6]}", work=0)
    cal = calibrate(probe, items, batch_size)
    prepared = [[probe.prepare_item_func(it) for it in items[s : s + batch_size]] for s in range(0, 4 * batch_size, batch_size)]
    costs = {name: model_cost(kind, factor, cal) for name, (kind, factor) in settings.items()}
    progress(f"  [{backend}] read + decode {cal['prep_s_per_item'] * 1e3:.2f} ms/item; costs {costs}")
    times: dict[str, dict[str, dict[int, list[float]]]] = {s: {p: {small: [], large: []} for p in programs} for s in settings}
    bound: dict[str, list[float]] = {s: [] for s in settings}
    serial = [0]

    def command(program: str, setting: str, n: int) -> list[str]:
        work, device_s = costs[setting]
        serial[0] += 1
        reader = variants.get(program, {}).get("loop_reader", loop_reader)
        if program != "user_loop" and "loop_reader" not in variants.get(program, {}):
            model = registry.create_model(
                f"uc-{setting}-{serial[0]}-{uuid.uuid4().hex[:6]}", adapter=ADAPTER, labels=[f"class-{i}" for i in range(8)],
                configuration={"work": work, "device_s_per_item": device_s, **variants.get(program, {})},
            )  # fmt: skip
            return [*_cli(), "predict", model.id, "--dataset", datasets[n].id, "--store", uri, "--allow-untrained", "--batch-size", str(batch_size)]
        out = f"user-loop/{serial[0]}" if uri.startswith("s3://") else str(workdir / "user-loop" / str(serial[0]))
        return [sys.executable, "-m", "bench.user_loop", "--store", uri, "--items", str(keys[n]), "--out", out,
                "--work", str(work), "--device-s", str(device_s), "--batch-size", str(batch_size), "--reader", reader]  # fmt: skip

    runs = [(p, n) for p in programs for n in (small, large)]
    for r in range(repeats):
        for setting in settings:
            order = runs[r % len(runs) :] + runs[: r % len(runs)]
            for program, n in order:
                times[setting][program][n].append(_timed(command(program, setting, n), REPO))
            work, device_s = costs[setting]
            probe.configuration.update(work=work, device_s_per_item=device_s)
            bound[setting].append(model_only_rate(probe, prepared, large - small, batch_size))
        progress(f"  [{backend}] repeat {r + 1}/{repeats} done (load {os.getloadavg()[0]:.2f})")
    out: dict[str, Any] = {"small": small, "large": large, "repeats": repeats, "batch_size": batch_size, "image_size": image_size, "image_format": image_format,
                           "calibration": cal, "settings": {}, "loop_reader": loop_reader if uri.startswith("s3://") else "file"}  # fmt: skip
    for setting in settings:
        work, device_s = costs[setting]
        rates = {
            p: [(large - small) / (tl - ts) for ts, tl in zip(times[setting][p][small], times[setting][p][large])] for p in programs
        }
        per_repeat = [a / b for a, b in zip(rates["predict"], rates["user_loop"])]
        # The headline rate: from each size's median time (robust on a loaded machine, where one
        # repeat's difference of two times can come out near zero); the spread: each repeat's own rate.
        steady = {p: (large - small) / (statistics.median(times[setting][p][large]) - statistics.median(times[setting][p][small])) for p in programs}
        items_per_s = {p: spread(v) | {"median": round(steady[p], 1)} for p, v in rates.items()}
        row = {
            "work": work,
            "device_ms_per_item": round(device_s * 1e3, 3),
            "items_per_s": items_per_s,
            "median_of_repeat_rates": {p: round(statistics.median(v), 1) for p, v in rates.items()},
            "model_only": spread(bound[setting]),
            "ratio": round(steady["predict"] / steady["user_loop"], 3),
            "ratio_per_repeat": {k: round(f(per_repeat), 3) for k, f in (("median", statistics.median), ("min", min), ("max", max))},
            "ratio_vs_model_only": round(steady["predict"] / statistics.median(bound[setting]), 3),
            # the most any program can reach is the model's own bound: over the loop's rate, the highest ratio there is to get
            "ceiling_vs_loop": round(statistics.median(bound[setting]) / steady["user_loop"], 3),
            "variants": {v: {"configuration": variants[v], "ratio": round(steady[v] / steady["user_loop"], 3)} for v in variants},
            "seconds": {p: {str(n): [round(t, 3) for t in v] for n, v in d.items()} for p, d in times[setting].items()},
        }
        out["settings"][setting] = row
        ips = row["items_per_s"]
        progress(
            f"  [{backend}] {setting:12s} predict {ips['predict']['median']:.0f}/s ({ips['predict']['min']:.0f}-{ips['predict']['max']:.0f}) "
            f"vs user_loop {ips['user_loop']['median']:.0f}/s ({ips['user_loop']['min']:.0f}-{ips['user_loop']['max']:.0f}): "
            f"{row['ratio']:.2f}x; model alone {row['model_only']['median']:.0f}/s ({row['ratio_vs_model_only']:.2f} of it; {row['ceiling_vs_loop']:.2f}x the loop at most)"
            + "".join(f"; {v} {ips[v]['median']:.0f}/s ({ips[v]['min']:.0f}-{ips[v]['max']:.0f}): {row['variants'][v]['ratio']:.2f}x" for v in variants)
        )
    return out


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 24's rows for ``evaluate_targets``: predict vs the hand-written loop, and vs the model alone."""
    rows = []
    for backend, res in results.items():
        for setting, row in res["settings"].items():
            ips = row["items_per_s"]
            if setting in TARGETS:
                rows.append({
                    "target": f"model-adapter predict >= {TARGETS[setting]:g} x the hand-written DataLoader loop (processes, steady state)",
                    "case": f"{backend} / {setting}", "value": row["ratio"], "limit": TARGETS[setting],
                    "met": row["ratio"] >= TARGETS[setting],
                    "detail": f"{ips['predict']['median']:.0f}/s ({ips['predict']['min']:.0f}-{ips['predict']['max']:.0f}) vs "
                              f"{ips['user_loop']['median']:.0f}/s ({ips['user_loop']['min']:.0f}-{ips['user_loop']['max']:.0f})",
                })  # fmt: skip
            if setting == "model_bound":
                rows.append({
                    "target": f"model-adapter predict >= {MODEL_BOUND_TARGET:g} x the model alone (model-bound)",
                    "case": f"{backend} / {setting}", "value": row["ratio_vs_model_only"], "limit": MODEL_BOUND_TARGET,
                    "met": row["ratio_vs_model_only"] >= MODEL_BOUND_TARGET,
                    "detail": f"{ips['predict']['median']:.0f}/s vs {row['model_only']['median']:.0f}/s",
                })  # fmt: skip
    return rows


def render(results: dict[str, Any]) -> list[str]:
    """The Markdown section of this comparison."""
    any_row = next(iter(results.values()))
    out = [
        "### 1b. The user's comparison: `model-adapter predict` processes vs a hand-written DataLoader loop process (items/s; higher is better)",
        "",
        f"Steady state = ({any_row['large']} - {any_row['small']}) items / (t({any_row['large']}) - t({any_row['small']})), whole processes "
        f"(`bench/user_compare.py`, the loop is `bench/user_loop.py`), {any_row['image_size']}x{any_row['image_size']} {any_row.get('image_format', 'png').upper()}s, batch "
        f"{any_row['batch_size']}, default settings, {any_row['repeats']} interleaved repeats: the rate from each size's median time, "
        "and in brackets the min-max of each repeat's own rate (a loaded machine makes single differences swing). `model alone`: "
        "`predict` on prepared batches in one thread (the model's own bound); `highest ratio possible`: that bound over the loop's "
        "rate, the ratio a program that loses no time at all would reach."
        + (f" On S3 the loop reads with {READER_NAMES[results['s3'].get('loop_reader', 'minio')]}." if "s3" in results else ""),
        "",
        "| store | setting | model cost | model-adapter predict | hand-written loop | ratio (per repeat: min-max) | model alone | of model alone | highest ratio possible |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, res in results.items():
        for setting, row in res["settings"].items():
            ips = row["items_per_s"]
            cost = f"device {row['device_ms_per_item']:.2f} ms/item" if row["device_ms_per_item"] else f"NumPy, {row['work']} layers"
            rr = row["ratio_per_repeat"]
            out.append(
                f"| {backend} | {setting} | {cost} | {ips['predict']['median']:,.0f} ({ips['predict']['min']:,.0f}-{ips['predict']['max']:,.0f}) | "
                f"{ips['user_loop']['median']:,.0f} ({ips['user_loop']['min']:,.0f}-{ips['user_loop']['max']:,.0f}) | "
                f"{row['ratio']:.2f} ({rr['min']:.2f}-{rr['max']:.2f}) | {row['model_only']['median']:,.0f} | {row['ratio_vs_model_only']:.2f} | "
                f"{row.get('ceiling_vs_loop', 0):.2f} |"
            )
    for backend, res in results.items():
        for setting, row in res["settings"].items():
            for v, var in row.get("variants", {}).items():
                ips = row["items_per_s"][v]
                out.append(f"- {backend} / {setting}: `{v}` ({var['configuration']}) {ips['median']:,.0f}/s ({ips['min']:,.0f}-{ips['max']:,.0f}), "
                           f"{var['ratio']:.2f}x the hand-written loop's rate")  # fmt: skip
    out.append("")
    return out


def parse_costs(specs: list[str]) -> dict[str, tuple[str, float]]:
    """Cost models given as ``NAME=KIND:FACTOR`` (KIND ``device`` or ``numpy``, FACTOR x reading + decoding an item)."""
    out = {}
    for spec in specs:
        name, _, model = spec.partition("=")
        kind, _, factor = model.partition(":")
        try:
            value = float(factor)
        except ValueError:
            value = -1.0
        if not name or kind not in ("device", "numpy") or value < 0:
            raise ValueError(f"--cost {spec!r}: expected NAME=device:FACTOR or NAME=numpy:FACTOR, FACTOR a number >= 0")
        out[name] = (kind, value)
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.user_compare [--repeats 5] [--backends local,s3]``: this comparison alone, printed."""
    import argparse

    from adapter_base.storage import open_store

    from .common import s3_uri, seaweed_server

    ap = argparse.ArgumentParser(prog="python -m bench.user_compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=REPEATS)
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--large", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--image-format", default="png", choices=tuple(IMAGE_FORMATS), help="the items' format (default png)")
    ap.add_argument("--backends", default="local,s3")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"cost models among {', '.join(SETTINGS)}")
    ap.add_argument("--cost", action="append", default=[], metavar="NAME=KIND:FACTOR",
                    help="one more cost model, e.g. light_device=device:0.5 (a wait of 0.5x reading + decoding) or "
                    "light_model=numpy:1 (NumPy work of 1x); measured beside --settings, with no target of its own")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--loop-reader", default="s3torch", choices=tuple(READER_NAMES), help="how the hand-written loop reads on S3 (default s3torch)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=JSON[,KEY=JSON]",
                    help="one more model-adapter predict row with these configuration keys, e.g. threads:prepare_in_processes=false")
    a = ap.parse_args(argv)
    if (error := image_size_error(a.image_size)) is not None:
        ap.error(error)
    try:
        chosen = {**{k: SETTINGS[k] for k in a.settings.split(",") if k}, **parse_costs(a.cost)}
    except (KeyError, ValueError) as exc:
        ap.error(str(exc))
    work = Path(tempfile.mkdtemp(prefix="user-compare-", dir=REPO / ".bench" if (REPO / ".bench").is_dir() else None))
    os.environ["MODEL_ADAPTER_HOME"] = str(work / "home")
    print(f"load average at the start: {os.getloadavg()}")
    backends = a.backends.split(",")
    variants = {}
    for spec in a.variant:
        name, _, pairs = spec.partition(":")
        variants[name] = {k: json.loads(v) for k, v in (pair.split("=", 1) for pair in pairs.split(",") if pair)}
    results: dict[str, Any] = {}
    import contextlib

    with (seaweed_server(work) if "s3" in backends else contextlib.nullcontext()):
        for backend in backends:
            uri = s3_uri() if backend == "s3" else str(work / "store")
            with Registry(open_store(uri)) as registry:
                results[backend] = run_backend(registry, backend, uri, work, small=a.small, large=a.large, repeats=a.repeats, image_size=a.image_size, image_format=a.image_format, variants=variants, loop_reader=a.loop_reader,
                    settings=chosen)
    print(f"load average at the end: {os.getloadavg()}")
    for t in targets(results):
        print(f"  {'ok  ' if t['met'] else 'MISS'} {t['target']} [{t['case']}]: {t['value']} ({t['detail']})")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
