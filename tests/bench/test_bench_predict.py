"""Smoke tests of ``bench/predict_bench.py`` at tiny sizes, and the honesty of its baseline."""

from __future__ import annotations

import pytest

from adapter_base import Registry
from adapter_base.storage import open_store
from bench import predict_bench as pb


def test_every_measure_runs_and_is_summarised_on_the_local_store(bench_registry, blas_one_thread):
    out = pb.run_backend(bench_registry, "local", n=40, repeats=1, batch_size=8, settings={"balanced": ("numpy", 1.0), "device_balanced": ("device", 1.0)}, progress=lambda _: None)
    assert out["settings"]["device_balanced"]["device_ms_per_item"] > 0 and out["settings"]["device_balanced"]["work"] == 0
    s = out["settings"]["balanced"]
    assert set(s["items_per_s"]) == set(pb.MEASURES)
    assert all(v > 0 for v in s["items_per_s"].values())
    assert s["ratio_vs_slowest_stage"] > 0 and s["speedup_vs_batch_at_a_time"] > 0 and s["ratio_vs_machine_bound"] > 0
    assert s["slowest_stage"] in ("io_only", "model_only", "write_only")
    assert out["calibration"]["io_s_per_item"] > 0 and out["calibration"]["model_s_per_item_per_work"] > 0


def test_batch_at_a_time_stores_what_predict_items_stores(bench_registry, blas_one_thread):
    items = pb.build_dataset(bench_registry, 20, image_size=32)
    adapter = pb.bench_adapter(bench_registry, work=2, dim=64)
    model = adapter.model_entity

    def stored() -> dict[str, list[tuple[str, float]]]:
        out = {}
        for it in items:
            pset = bench_registry.get_predictions(it, model.id)
            out[it.id] = [(a.label, round(a.model.confidence, 6)) for a in pset.annotations]
            bench_registry.delete_predictions(it, model.id)
        return out

    assert pb.batch_at_a_time(adapter, items, 8) == 20
    baseline = stored()
    assert pb.predict_items(adapter, items, 8) == 20
    assert stored() == baseline
    assert all(len(v) == 5 for v in baseline.values())


@pytest.mark.s3
def test_prediction_bench_runs_against_seaweedfs(s3_store_uri, seaweed, blas_one_thread):
    with Registry(open_store(s3_store_uri)) as registry:
        out = pb.run_backend(
            registry, "s3", n=32, repeats=1, batch_size=8, server_pid=seaweed.pid, settings={"io_bound": ("numpy", 0.3)}, progress=lambda _: None
        )
    s = out["settings"]["io_bound"]
    assert all(v > 0 for v in s["items_per_s"].values())
    # the server's CPU is counted for the S3 runs
    assert any(x["server_cpu_s"] > 0 for x in s["samples"]["io_only"])
