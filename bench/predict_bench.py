"""Item 1: ``predict_dataset`` as users run it, against what they would write instead, and against its stages.

For the same N distinct PNG items on one store (SeaweedFS S3 or the local store), the same
model and first-time writes (every run predicts with a new model, so each prediction set is
a new object), end to end from listing the dataset to the last write:

- ``predict_dataset``: the framework, with its defaults;
- ``dataloader_loop``, ``naive_loop``, ``ray_data``: the loops of ``bench/baselines.py``;

and the engine's stages alone, each the way the engine runs it:

- ``input_stage``: ``predict_dataset`` with ``write=False`` and a model that does nothing
  (listing, reading and preparing on the engine's own pools);
- ``model_only``: ``predict`` and ``stamp`` on already prepared batches, in the calling thread;
- ``write_only``: the engine's ``ResultWriter`` on the same stamped sets, sized as the engine sizes it.

Two settings (the model's cost is calibrated per store from the CPU time of reading and decoding
one item on one core, ``prep``): ``model_bound`` (NumPy work of ~2x ``prep`` per item, on one
BLAS thread) and ``device_bound`` (a wait of ~1x ``prep`` per item with neither GIL nor CPU
held, as a model on an accelerator costs its host). Repeats are interleaved: each repeat
runs every setting, and within a setting every measure, in an order that rotates.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Callable

from adapter_base import Item, PredictionOptions, Registry
from adapter_base.concurrency import ordered_map
from adapter_base.entities import Dataset
from adapter_base.prediction.contract import stamp
from adapter_base.prediction.pools import plan_pools, uses_default_prepare
from adapter_base.prediction.tasks import PREDICT
from adapter_base.prediction.writer import ResultWriter, registry_store, started_write_process

from . import baselines
from .common import IMAGE_FORMATS, Meter, Sample, fmt_spread, median, rate_spread, synthetic_images
from .models import CostModelAdapter, seconds_per_work_unit

log = logging.getLogger("bench.predict")

RUNNERS = ("predict_dataset", "dataloader_loop", "naive_loop", "ray_data")
STAGES = ("input_stage", "model_only", "write_only")
MEASURES = RUNNERS + STAGES
#: setting -> (model kind, model seconds per item as a multiple of reading + decoding one item on one core).
SETTINGS: dict[str, tuple[str, float]] = {
    "model_bound": ("numpy", 2.0),
    "device_bound": ("device", 1.0),
}
#: Targets of issue 15: predict_dataset's throughput over each baseline's (>=), per setting (None: every setting).
TARGETS: dict[str, tuple[float, str | None]] = {
    "dataloader_loop": (1.0, None),
    "naive_loop": (1.5, "device_bound"),
    "ray_data": (2.0, None),
}


# ----------------------------------------------------------------------------- data
@lru_cache(maxsize=2)
def _images(n: int, size: int, fmt: str) -> tuple[bytes, ...]:
    return tuple(synthetic_images(n, size, fmt=fmt))


def build_dataset(registry: Registry, n: int, *, image_size: int = 256, image_format: str = "png", name: str = "bench-images") -> Dataset:
    """A dataset of ``n`` distinct images (``image_format``: PNG by default), added with 16 threads."""
    images = _images(n, image_size, image_format)
    suffix = IMAGE_FORMATS[image_format]
    ds = registry.create_dataset(name, labels=[f"class-{i}" for i in range(8)])
    with ThreadPoolExecutor(16) as pool:
        def add(i: int) -> Item:
            return registry.add_item(ds, f"img/{i:06d}.{suffix}", images[i], item_id=f"{i:08d}")

        for _, res in ordered_map(add, range(n), pool=pool, window=64):
            if isinstance(res, BaseException):
                raise res
    return ds


def bench_adapter(registry: Registry, name: str, **config: Any) -> CostModelAdapter:
    """A new model (so its prediction sets are new objects) bound to a loaded ``CostModelAdapter``."""
    model = registry.create_model(name, labels=[f"class-{i}" for i in range(8)], configuration=dict(config))
    adapter = CostModelAdapter(registry=registry)
    adapter.load_from_model(model)
    return adapter


# ----------------------------------------------------------------------------- measures
def predict_dataset(adapter: CostModelAdapter, dataset_id: str, batch_size: int) -> int:
    report = adapter.predict_dataset(dataset_id, batch_size=batch_size)
    if not report.ok:
        raise RuntimeError(report.summary())
    return report.succeeded


def input_stage(adapter: CostModelAdapter, dataset_id: str, batch_size: int) -> int:
    """Listing, reading and preparing as the engine runs them: the model returns nothing, nothing is written."""
    saved = dict(adapter.configuration)
    adapter.configuration.update(work=0, device_s_per_item=0.0, boxes=0)
    try:
        report = adapter.predict_dataset(dataset_id, batch_size=batch_size, write=False, save_report=False)
    finally:
        adapter.configuration.clear()
        adapter.configuration.update(saved)
    if not report.ok:
        raise RuntimeError(report.summary())
    return report.succeeded


def model_only(adapter: CostModelAdapter, items: list[Item], batch_size: int, prepared: list[list[Any]]) -> int:
    """``predict`` + ``stamp`` on prepared batches (a few distinct batches reused), in this thread."""
    model = adapter.model_entity
    assert model is not None
    done = 0
    for b, start in enumerate(range(0, len(items), batch_size)):
        batch_items = items[start : start + batch_size]
        outs = adapter.predict(prepared[b % len(prepared)][: len(batch_items)], items=batch_items)
        done += len([stamp(model, "model-only", it, c) for it, c in zip(batch_items, outs)])
    return done


def write_only(adapter: CostModelAdapter, items: list[Item], outs: list[Any], batch_size: int) -> int:
    """The engine's writer, sized as the engine sizes it, on sets stamped for this run's (new) model."""
    model = adapter.model_entity
    assert model is not None
    options = PredictionOptions.from_configuration(adapter.configuration, batch_size=batch_size)
    pools = plan_pools(options, adapter.registry.store, default_prepare=uses_default_prepare(adapter))
    done = [0]

    def written(its: Any, errors: Any) -> None:
        for e in errors:
            if e is not None:
                raise e
        done[0] += len(its)

    remote = started_write_process(adapter.registry, PREDICT, None, processes=pools.write_processes, threads=pools.write_threads)  # as the engine does
    writer = ResultWriter(
        registry_store(adapter.registry), collect=None, workers=pools.write_threads, chunk=batch_size if remote else options.io_chunk,
        on_written=written, backlog=max(4 * pools.write_threads, options.prefetch_batches * batch_size), remote=remote,
    )  # fmt: skip
    try:
        for start in range(0, len(items), batch_size):
            for it, coll in zip(items[start : start + batch_size], outs[start : start + batch_size]):
                writer.accept(it, stamp(model, "write-only", it, coll))
            writer.flush()
    finally:
        writer.close()
    return done[0]


# ----------------------------------------------------------------------------- calibration
def calibrate(adapter: CostModelAdapter, items: list[Item], batch_size: int) -> dict[str, float]:
    """CPU seconds to read + decode one item, and of one unit of model work per item (CPU time: steady on a busy machine)."""
    probe = items[: min(len(items), 64)]
    for it in probe[:8]:
        adapter.prepare_item_func(it)  # warm caches and connections
    t = time.thread_time()
    for it in probe:
        adapter.prepare_item_func(it)
    prep = (time.thread_time() - t) / len(probe)
    batch = [adapter.prepare_item_func(it) for it in items[:batch_size]]
    unit, fixed = seconds_per_work_unit(adapter, batch)
    return {"prep_s_per_item": prep, "model_s_per_item_per_work": unit, "model_fixed_s_per_item": fixed}


def model_cost(kind: str, factor: float, cal: dict[str, float]) -> tuple[int, float]:
    """(NumPy work, device seconds per item) that make the model cost ``factor`` x reading + decoding one item."""
    target = factor * cal["prep_s_per_item"]
    if kind == "device":
        return 0, max(0.0, target - cal["model_fixed_s_per_item"])
    return max(0, round((target - cal["model_fixed_s_per_item"]) / cal["model_s_per_item_per_work"])), 0.0


# ----------------------------------------------------------------------------- the run
def run_backend(
    registry: Registry,
    backend: str,
    uri: str,
    *,
    n: int,
    repeats: int,
    batch_size: int = 16,
    server_pid: int | None = None,
    settings: dict[str, tuple[str, float]] | None = None,
    measures: tuple[str, ...] = MEASURES,
    ray: "baselines.RayRunner | None | str" = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every measure for every setting, ``repeats`` times interleaved; medians and ratios.

    ``ray``: a started ``RayRunner``, or why Ray Data cannot run here (its rows are then left out).
    """
    settings = settings or SETTINGS
    if not isinstance(ray, baselines.RayRunner):
        measures = tuple(m for m in measures if m != "ray_data")
    meter = Meter(server_pid)
    t0 = time.perf_counter()
    ds = build_dataset(registry, n)
    items = list(registry.iter_items(ds))
    setup_s = time.perf_counter() - t0
    progress(f"  [{backend}] {n} distinct items stored in {setup_s:.1f}s")
    probe = bench_adapter(registry, "bench-calibration", work=0)
    cal = calibrate(probe, items, batch_size)
    progress(
        f"  [{backend}] calibration: read + decode {cal['prep_s_per_item'] * 1e3:.2f} ms/item on one core, "
        f"model {cal['model_s_per_item_per_work'] * 1e6:.1f} us/item per work unit"
    )
    prepared = [[probe.prepare_item_func(it) for it in items[s : s + batch_size]] for s in range(0, min(n, 4 * batch_size), batch_size)]
    outs: list[Any] = []
    for b, start in enumerate(range(0, n, batch_size)):
        chunk = items[start : start + batch_size]
        outs += probe.predict(prepared[b % len(prepared)][: len(chunk)], items=chunk)
    costs = {name: model_cost(kind, factor, cal) for name, (kind, factor) in settings.items()}
    samples: dict[str, dict[str, list[Sample]]] = {s: {m: [] for m in measures} for s in settings}
    serial = [0]

    def fresh(setting: str) -> CostModelAdapter:
        serial[0] += 1
        work, device_s = costs[setting]
        return bench_adapter(registry, f"bench-{setting}-{serial[0]}", work=work, device_s_per_item=device_s)

    def runner(m: str, a: CostModelAdapter) -> Callable[[], int]:
        return {
            "predict_dataset": lambda: predict_dataset(a, ds.id, batch_size),
            "dataloader_loop": lambda: baselines.dataloader_loop(a, uri, ds.id, batch_size),
            "naive_loop": lambda: baselines.naive_loop(a, ds.id, batch_size),
            "ray_data": lambda: ray.run(a, uri, ds.id, batch_size),  # type: ignore[union-attr]
            "input_stage": lambda: input_stage(a, ds.id, batch_size),
            "model_only": lambda: model_only(a, items, batch_size, prepared),
            "write_only": lambda: write_only(a, items, outs, batch_size),
        }[m]

    for r in range(repeats):
        for setting in settings:
            order = measures[r % len(measures) :] + measures[: r % len(measures)]
            for m in order:
                adapter = fresh(setting)
                s, count = meter.measure(runner(m, adapter))
                if count != n:
                    raise RuntimeError(f"{m} handled {count} of {n} items")
                samples[setting][m].append(s)
        progress(f"  [{backend}] repeat {r + 1}/{repeats} done")
    out: dict[str, Any] = {"n": n, "batch_size": batch_size, "repeats": repeats, "setup_s": round(setup_s, 2), "calibration": cal, "settings": {}}
    if not isinstance(ray, baselines.RayRunner):
        out["ray_data"] = ray or "not run"
    for name, (kind, factor) in settings.items():
        work, device_s = costs[name]
        row = summarize(samples[name], n, work=work, model_factor=factor)
        row.update(model=kind, device_ms_per_item=round(device_s * 1e3, 3))
        out["settings"][name] = row
        ips = row["items_per_s"]
        progress(
            f"  [{backend}] {name:12s} work={work:3d} device={device_s * 1e3:.2f}ms: "
            + ", ".join(f"{m} {fmt_spread(ips[m])}/s" for m in measures)
            + " | "
            + ", ".join(f"vs {b} {row['ratio'][b]:.2f}x" for b in row["ratio"])
        )
    return out


def summarize(samples: dict[str, list[Sample]], n: int, *, work: int, model_factor: float, ncpu: int | None = None) -> dict[str, Any]:
    """Medians, items/s (median with the min-max of the repeats), predict_dataset's ratio over each
    baseline (of the median times), and the bound its stages set."""
    ncpu = ncpu or os.cpu_count() or 1
    wall = {m: median([s.wall_s for s in v]) for m, v in samples.items() if v}
    cpu = {m: median([s.cpu_s + s.server_cpu_s for s in v]) for m, v in samples.items() if v}
    stages = [m for m in STAGES if m in wall]
    ours = wall["predict_dataset"]
    row: dict[str, Any] = {
        "work": work,
        "model_factor": model_factor,
        "median_s": {m: round(v, 4) for m, v in wall.items()},
        "items_per_s": {m: rate_spread(n, [s.wall_s for s in v]) for m, v in samples.items() if v},
        "median_cpu_s": {m: round(v, 4) for m, v in cpu.items()},
        # ours over theirs in throughput: > 1 means predict_dataset is faster
        "ratio": {m: round(wall[m] / ours, 3) for m in RUNNERS if m in wall and m != "predict_dataset"},
    }
    if stages:
        # What the machine allows: no faster than the slowest stage alone, nor than the CPU
        # seconds the stages need alone (this process + the store server) over the cores
        # other processes left us during the predict_dataset runs.
        slowest = max(wall[m] for m in stages)
        other = median([s.other_cpu_s / s.wall_s for s in samples["predict_dataset"] if s.wall_s > 0])
        cores = max(1.0, ncpu - other)
        cpu_floor = sum(cpu[m] for m in stages) / cores
        bound = max(slowest, cpu_floor)
        row.update(
            slowest_stage=max(stages, key=lambda m: wall[m]),
            ratio_vs_slowest_stage=round(ours / slowest, 3),
            cpu_floor_s=round(cpu_floor, 4),
            other_load_cores=round(other, 2),
            cores_available=round(cores, 2),
            machine_bound_s=round(bound, 4),
            bound_items_per_s=round(n / bound, 1),
            ratio_vs_machine_bound=round(ours / bound, 3),
        )
    row["samples"] = {m: [s.to_dict() for s in v] for m, v in samples.items()}
    return row
