"""Item 1: streaming prediction against its stages alone and against the original batch-at-a-time loop.

For the same items and model, on one store (SeaweedFS S3 or the local store):

- ``io_only``: fetch and prepare every item (the engine's ``prepare_item_func`` on a 16-thread
  pool, the same window as the engine), nothing else;
- ``model_only``: ``predict`` on already prepared batches;
- ``write_only``: writing the same stamped prediction sets (16-thread pool);
- ``batch_at_a_time``: dtlpy's ``BaseModelAdapter.predict_items`` loop: per batch, prepare on a
  16-thread pool (``pool.map``), predict, stamp each item's annotations on the pool, upload them
  on the pool (``pool.map``), then the next batch: no overlap between batches;
- ``predict_items``: the framework's streaming engine, end to end.

The model's cost is set per backend from a calibration so that it is ~3x the I/O stage
(``model_bound``), ~0.3x (``io_bound``) or about equal (``balanced``).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from adapter_base import Item, PredictionOptions, PredictionSet, Registry
from adapter_base.concurrency import ordered_map
from adapter_base.prediction.contract import stamp  # what the original's _update_predictions_metadata does, and ours

from .common import Meter, Sample, median, png_images
from .models import CostModelAdapter, seconds_per_work_unit

log = logging.getLogger("bench.predict")

POOL_THREADS = 16  # dtlpy's ThreadPoolExecutor(max_workers=16), and the engine's default io_workers
MEASURES = ("io_only", "model_only", "write_only", "batch_at_a_time", "predict_items")
#: setting -> (model kind, model seconds per item as a multiple of the slowest I/O stage).
#: ``numpy``: the cost is CPU work in NumPy (one BLAS thread); ``device``: the cost is a wait
#: with neither GIL nor CPU held, as a model on an accelerator costs the host.
SETTINGS: dict[str, tuple[str, float]] = {
    "model_bound": ("numpy", 3.0),
    "balanced": ("numpy", 1.0),
    "io_bound": ("numpy", 0.3),
    "device_balanced": ("device", 1.0),
}


# ----------------------------------------------------------------------------- data
def build_dataset(registry: Registry, n: int, *, image_size: int = 256, name: str = "bench-images") -> list[Item]:
    """``n`` PNG items (32 distinct images reused) added with 16 threads; returns them in id order."""
    images = png_images(32, image_size)
    ds = registry.create_dataset(name, labels=[f"class-{i}" for i in range(8)])
    with ThreadPoolExecutor(POOL_THREADS) as pool:
        def add(i: int) -> Item:
            return registry.add_item(ds, f"img/{i:06d}.png", images[i % len(images)], item_id=f"{i:08d}")

        for _, res in ordered_map(add, range(n), pool=pool, window=4 * POOL_THREADS):
            if isinstance(res, BaseException):
                raise res
    return list(registry.iter_items(ds))


def bench_adapter(registry: Registry, name: str = "bench-model", **config: Any) -> CostModelAdapter:
    model = registry.create_model(name, labels=[f"class-{i}" for i in range(8)], configuration=dict(config))
    adapter = CostModelAdapter(registry=registry)
    adapter.load_from_model(model)
    return adapter


# ----------------------------------------------------------------------------- measures
def io_only(adapter: CostModelAdapter, items: list[Item], batch_size: int) -> int:
    done = 0
    with ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="io-only") as pool:
        window = PredictionOptions.from_configuration(adapter.configuration).prefetch_batches * batch_size
        for _, res in ordered_map(adapter.prepare_item_func, items, pool=pool, window=window):
            if isinstance(res, BaseException):
                raise res
            done += 1
    return done


def model_only(adapter: CostModelAdapter, items: list[Item], batch_size: int, prepared: list[list[Any]]) -> int:
    done = 0
    for b, start in enumerate(range(0, len(items), batch_size)):
        batch_items = items[start : start + batch_size]
        batch = prepared[b % len(prepared)][: len(batch_items)]
        out = adapter.predict(batch, items=batch_items)
        done += len(out)
    return done


def write_only(adapter: CostModelAdapter, items: list[Item], psets: list[PredictionSet]) -> int:
    registry = adapter.registry
    done = 0
    with ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="write-only") as pool:
        for _, res in ordered_map(lambda p: registry.put_predictions(p, items[0].dataset_id), psets, pool=pool, window=4 * POOL_THREADS):
            if isinstance(res, BaseException):
                raise res
            done += 1
    return done


def batch_at_a_time(adapter: CostModelAdapter, items: list[Item], batch_size: int) -> int:
    """dtlpy's loop (``BaseModelAdapter.predict_items``), with this framework's store and records."""
    model = adapter.model_entity
    assert model is not None
    registry = adapter.registry
    run_id = "batch-at-a-time"
    done = 0
    pool = ThreadPoolExecutor(max_workers=POOL_THREADS)
    try:
        for i_batch in range(0, len(items), batch_size):
            batch_items = items[i_batch : i_batch + batch_size]
            batch = list(pool.map(adapter.prepare_item_func, batch_items))
            batch_collections = adapter.predict(batch, items=batch_items)
            psets = list(pool.map(lambda it, c: stamp(model, run_id, it, c), batch_items, batch_collections))
            list(pool.map(lambda p, it: registry.put_predictions(p, it.dataset_id), psets, batch_items))
            done += len(psets)
    finally:
        pool.shutdown()
    return done


def predict_items(adapter: CostModelAdapter, items: list[Item], batch_size: int) -> int:
    report = adapter.predict_items(items, batch_size=batch_size, save_report=False)
    if not report.ok:
        raise RuntimeError(report.summary())
    return report.succeeded


# ----------------------------------------------------------------------------- the run
def calibrate(adapter: CostModelAdapter, items: list[Item], batch_size: int, meter: Meter, psets: list[PredictionSet]) -> dict[str, float]:
    """Per-item seconds of the I/O stages (one warm-up pass each) and of one unit of model work."""
    probe = items[: min(len(items), max(4 * batch_size, len(items) // 2))]
    io_only(adapter, probe, batch_size)  # warm caches and connections
    s_io, _ = meter.measure(lambda: io_only(adapter, probe, batch_size))
    write_only(adapter, probe, psets[: len(probe)])
    s_w, _ = meter.measure(lambda: write_only(adapter, probe, psets[: len(probe)]))
    batch = [adapter.prepare_item_func(it) for it in items[:batch_size]]
    unit, fixed = seconds_per_work_unit(adapter, batch)
    return {
        "io_s_per_item": s_io.wall_s / len(probe),
        "write_s_per_item": s_w.wall_s / len(probe),
        "model_s_per_item_per_work": unit,
        "model_fixed_s_per_item": fixed,
    }


def run_backend(
    registry: Registry,
    backend: str,
    *,
    n: int,
    repeats: int,
    batch_size: int = 16,
    server_pid: int | None = None,
    settings: dict[str, tuple[str, float]] | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every measure, for every setting, ``repeats`` times interleaved (the order rotates); medians."""
    settings = settings or SETTINGS
    meter = Meter(server_pid)
    t0 = time.perf_counter()
    items = build_dataset(registry, n)
    setup_s = time.perf_counter() - t0
    progress(f"  [{backend}] {n} items stored in {setup_s:.1f}s")
    adapter = bench_adapter(registry, work=0, device_s_per_item=0.0)
    model = adapter.model_entity
    assert model is not None
    # The same annotations for every measure that writes: the model's output, stamped.
    prepared = [[adapter.prepare_item_func(it) for it in items[s : s + batch_size]] for s in range(0, min(n, 4 * batch_size), batch_size)]
    psets = []
    for b, start in enumerate(range(0, n, batch_size)):
        chunk = items[start : start + batch_size]
        outs = adapter.predict(prepared[b % len(prepared)][: len(chunk)], items=chunk)
        psets += [stamp(model, "write-only", it, c) for it, c in zip(chunk, outs)]
    cal = calibrate(adapter, items, batch_size, meter, psets)
    progress(
        f"  [{backend}] calibration: io {cal['io_s_per_item'] * 1e3:.2f} ms/item, write {cal['write_s_per_item'] * 1e3:.2f} ms/item, "
        f"model {cal['model_s_per_item_per_work'] * 1e6:.1f} us/item per work unit"
    )
    slowest_io = max(cal["io_s_per_item"], cal["write_s_per_item"])
    out: dict[str, Any] = {"n": n, "batch_size": batch_size, "repeats": repeats, "setup_s": round(setup_s, 2), "calibration": cal, "settings": {}}
    for name, (kind, factor) in settings.items():
        target = factor * slowest_io
        if kind == "device":
            work, device_s = 0, max(0.0, target - cal["model_fixed_s_per_item"])
        else:
            work, device_s = max(0, round((target - cal["model_fixed_s_per_item"]) / cal["model_s_per_item_per_work"])), 0.0
        adapter.configuration["work"] = work
        adapter.configuration["device_s_per_item"] = device_s
        runs: dict[str, Callable[[], int]] = {
            "io_only": lambda: io_only(adapter, items, batch_size),
            "model_only": lambda: model_only(adapter, items, batch_size, prepared),
            "write_only": lambda: write_only(adapter, items, psets),
            "batch_at_a_time": lambda: batch_at_a_time(adapter, items, batch_size),
            "predict_items": lambda: predict_items(adapter, items, batch_size),
        }
        samples: dict[str, list[Sample]] = {m: [] for m in MEASURES}
        for r in range(repeats):
            order = MEASURES[r % len(MEASURES) :] + MEASURES[: r % len(MEASURES)]
            for m in order:
                s, count = meter.measure(runs[m])
                if count != n:
                    raise RuntimeError(f"{m} handled {count} of {n} items")
                samples[m].append(s)
        out["settings"][name] = summarize(samples, n, work=work, model_factor=factor)
        out["settings"][name].update(model=kind, device_ms_per_item=round(device_s * 1e3, 3))
        row = out["settings"][name]
        progress(
            f"  [{backend}] {name:15s} work={work:4d} device={device_s * 1e3:.2f}ms: "
            + ", ".join(f"{m} {row['items_per_s'][m]:.0f}/s" for m in MEASURES)
            + f" | predict/max(stage) {row['ratio_vs_slowest_stage']:.2f}, batch_at_a_time/predict {row['speedup_vs_batch_at_a_time']:.2f}"
        )
    return out


def summarize(samples: dict[str, list[Sample]], n: int, *, work: int, model_factor: float, ncpu: int | None = None) -> dict[str, Any]:
    import os

    ncpu = ncpu or os.cpu_count() or 1
    wall = {m: median([s.wall_s for s in v]) for m, v in samples.items()}
    cpu = {m: median([s.cpu_s + s.server_cpu_s for s in v]) for m, v in samples.items()}
    stages = ("io_only", "model_only", "write_only")
    slowest = max(wall[m] for m in stages)
    # What the machine allows: no faster than the slowest stage alone, and no faster than the
    # CPU seconds the three stages need alone (this process + the store server) spread over the
    # cores that were ours: every core less what other processes used during predict_items.
    other = median([s.other_cpu_s / s.wall_s for s in samples["predict_items"] if s.wall_s > 0]) if samples["predict_items"] else 0.0
    cores = max(1.0, ncpu - other)
    cpu_floor = sum(cpu[m] for m in stages) / cores
    bound = max(slowest, cpu_floor)
    return {
        "work": work,
        "model_factor": model_factor,
        "median_s": {m: round(v, 4) for m, v in wall.items()},
        "items_per_s": {m: round(n / v, 1) for m, v in wall.items()},
        "median_cpu_s": {m: round(v, 4) for m, v in cpu.items()},
        "slowest_stage": max(stages, key=lambda m: wall[m]),
        "ratio_vs_slowest_stage": round(wall["predict_items"] / slowest, 3),
        "speedup_vs_batch_at_a_time": round(wall["batch_at_a_time"] / wall["predict_items"], 3),
        "cpu_floor_s": round(cpu_floor, 4),
        "other_load_cores": round(other, 2),
        "cores_available": round(cores, 2),
        "machine_bound_s": round(bound, 4),
        "ratio_vs_machine_bound": round(wall["predict_items"] / bound, 3),
        "samples": {m: [s.to_dict() for s in v] for m, v in samples.items()},
    }
