"""Smoke tests of ``bench/predict_bench.py`` at tiny sizes, and the honesty of its baselines."""

from __future__ import annotations

import pytest

from adapter_base import Registry
from adapter_base.storage import open_store
from bench import baselines
from bench import predict_bench as pb
from bench.report import evaluate_targets, render


def test_every_measure_runs_and_is_summarised_on_the_local_store(tmp_path, blas_one_thread):
    uri = str(tmp_path / "store")
    with Registry(open_store(uri)) as registry:
        out = pb.run_backend(registry, "local", uri, n=40, repeats=1, batch_size=8, ray="not installed here", progress=lambda _: None)
    assert out["ray_data"] == "not installed here"
    dev = out["settings"]["device_bound"]
    assert dev["device_ms_per_item"] > 0 and dev["work"] == 0
    s = out["settings"]["model_bound"]
    assert s["work"] > 0
    assert set(s["items_per_s"]) == set(pb.MEASURES) - {"ray_data"}
    assert all(0 < v["min"] <= v["median"] <= v["max"] for v in s["items_per_s"].values())
    assert set(s["ratio"]) == {"dataloader_loop", "naive_loop"} and all(v > 0 for v in s["ratio"].values())
    assert s["slowest_stage"] in pb.STAGES and s["bound_items_per_s"] > 0
    assert out["calibration"]["prep_s_per_item"] > 0 and out["calibration"]["model_s_per_item_per_work"] > 0
    # every target is reported, with the absolute figures behind each ratio; Ray's rows say why they are missing
    results = {"predict": {"local": out}, "gpu": {"cuda": False, "status": "no GPU here"}}
    rows = evaluate_targets(results)
    cases = {(r["target"], r["case"]) for r in rows}
    assert ("predict_dataset >= 1 x dataloader_loop", "local / model_bound") in cases
    assert ("predict_dataset >= 1.5 x naive_loop", "local / device_bound") in cases
    assert ("predict_dataset >= 1.5 x naive_loop", "local / model_bound") not in cases
    ray_rows = [r for r in rows if "ray_data" in r["target"]]
    assert ray_rows and all(r["met"] is None and r["detail"] == "not installed here" for r in ray_rows)
    loader = next(r for r in rows if r["target"].endswith("dataloader_loop") and r["case"] == "local / model_bound")
    ours, theirs = s["items_per_s"]["predict_dataset"]["median"], s["items_per_s"]["dataloader_loop"]["median"]
    assert loader["detail"] == f"{ours:,.0f}/s vs {theirs:,.0f}/s"  # one repeat: no min-max to show
    gpu = next(r for r in rows if r["target"].startswith("GPU"))
    assert gpu["met"] is None and gpu["detail"] == "no GPU here"
    text = render(results)
    assert "| not run | no GPU here |" in text and "ratio vs dataloader_loop" in text


def test_each_loop_stores_what_predict_dataset_stores_on_distinct_items(tmp_path, blas_one_thread):
    uri = str(tmp_path / "store")
    with Registry(open_store(uri)) as registry:
        ds = pb.build_dataset(registry, 20, image_size=32)
        items = list(registry.iter_items(ds))
        assert len({registry.read_item(it) for it in items}) == 20  # distinct images, not a few reused

        def stored(adapter) -> dict[str, list[tuple[str, float]]]:
            out = {}
            for it in items:
                pset = registry.get_predictions(it, adapter.model_entity.id)
                out[it.id] = [(a.label, round(a.model.confidence, 6), a.coordinates) for a in pset.annotations]
            return out

        def fresh(name: str):
            return pb.bench_adapter(registry, name, work=2, dim=64)

        ours = fresh("ours")
        assert pb.predict_dataset(ours, ds.id, 8) == 20
        expected = stored(ours)
        assert all(len(v) == 5 for v in expected.values())
        for name, run in {
            "naive": lambda a: baselines.naive_loop(a, ds.id, 8),
            "loader": lambda a: baselines.dataloader_loop(a, uri, ds.id, 8),
        }.items():
            adapter = fresh(name)
            assert run(adapter) == 20
            assert stored(adapter) == expected, name


@pytest.mark.s3
def test_prediction_bench_runs_against_seaweedfs(s3_store_uri, seaweed, blas_one_thread):
    with Registry(open_store(s3_store_uri)) as registry:
        out = pb.run_backend(
            registry, "s3", s3_store_uri, n=32, repeats=1, batch_size=8, server_pid=seaweed.pid,
            settings={"device_bound": ("device", 1.0)}, measures=("predict_dataset", "naive_loop", "input_stage"), progress=lambda _: None,
        )
    s = out["settings"]["device_bound"]
    assert set(s["items_per_s"]) == {"predict_dataset", "naive_loop", "input_stage"}
    assert all(v["median"] > 0 for v in s["items_per_s"].values())
    # the server's CPU is counted for the S3 runs
    assert any(x["server_cpu_s"] > 0 for x in s["samples"]["input_stage"])
