"""``python -m bench``: the command writes the JSON and the Markdown table; the report marks targets."""

from __future__ import annotations

import json

from bench import report
from bench.predict_bench import MEASURES
from bench.__main__ import main


def test_quick_run_writes_json_and_markdown(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "b.md"
    out_md.write_text(f"# Benchmarks\n\nhand-written intro\n\n{report.BEGIN}\nold table\n{report.END}\n\nhand-written analysis\n")
    main(["--quick", "--only", "predict", "--backends", "local", "--n", "32", "--no-ray", "--json", str(out_json), "--markdown", str(out_md), "--workdir", str(tmp_path / "work")])
    data = json.loads(out_json.read_text())
    assert set(data["predict"]["local"]["settings"]) == {"model_bound", "device_bound"}
    assert data["predict"]["local"]["ray_data"] == "skipped (--no-ray)"
    assert data["machine"]["cpus"] >= 1 and data["config"]["n"] == 32
    targets = {(t["target"], t["case"]): t for t in data["targets"]}
    assert targets[("predict_dataset >= 1 x dataloader_loop", "local / model_bound")]["met"] in (True, False)
    assert targets[("predict_dataset >= 2 x ray_data", "local / device_bound")]["detail"] == "skipped (--no-ray)"
    assert "GPU" in next(t["target"] for t in data["targets"] if t["target"].startswith("GPU"))
    md = out_md.read_text()
    assert "hand-written intro" in md and "hand-written analysis" in md and "old table" not in md
    assert "| local | model_bound |" in md
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir()), "scratch data is removed"


def test_targets_are_marked_met_or_missed():
    results = {
        "predict": {"s3": {"n": 10, "batch_size": 4, "ray_data": "not installed", "settings": {"model_bound": _setting(1.10, 1.7), "device_bound": _setting(0.9, 1.4)}}},
        "memory": {"local": {"ratio_peak": 1.05, "sizes": {"10": _mem(100), "20": _mem(105)}}},
        "artifacts": {"large": _art(0.95, 0.85)},
        "pipeline": {"overhead_per_step_s": 0.4, "max_step_overhead_s": 0.7, "per_step": {"load": {"kfp_local_s": 1, "in_process_s": 0.5, "overhead_s": 0.5}}, "kfp_local_total_s": 1, "in_process_total_s": 0.5},
    }
    rows = {(r["target"].split(" x ")[-1] if r["target"].startswith("predict_dataset") else r["target"].split()[0], r["case"]): r["met"] for r in report.evaluate_targets(results)}
    assert rows[("dataloader_loop", "s3 / model_bound")] is True and rows[("dataloader_loop", "s3 / device_bound")] is False
    assert rows[("naive_loop", "s3 / device_bound")] is False and ("naive_loop", "s3 / model_bound") not in rows
    assert rows[("ray_data", "s3 / model_bound")] is None  # not run: said so, neither met nor missed
    assert rows[("artifact", "save_to_model / large")] is True and rows[("artifact", "load_from_model / large")] is False
    assert rows[("peak", "local")] is True
    assert rows[("kfp.local", "mean over the DAG's steps")] is True and rows[("kfp.local", "worst step")] is False
    md = report.render(results)
    assert "**missed**" in md and "| s3 | model_bound |" in md and "| s3 | | Ray Data: not installed |" in md
    assert "| 110/s vs 100/s |" in md  # the absolute figures behind the ratio


def _setting(vs_loader: float, vs_naive: float) -> dict:
    ips = {m: 100.0 for m in MEASURES if m != "ray_data"}
    ips["predict_dataset"] = 100.0 * vs_loader
    return {
        "work": 1, "model": "numpy", "device_ms_per_item": 0.0, "items_per_s": ips, "median_cpu_s": {m: 1.0 for m in ips},
        "ratio": {"dataloader_loop": vs_loader, "naive_loop": vs_naive}, "bound_items_per_s": 120.0, "other_load_cores": 0.0,
    }


def _mem(peak: float) -> dict:
    return {"peak_rss_mib": peak, "baseline_rss_mib": 90.0, "growth_mib": peak - 90, "items_per_s": 50.0}


def _art(save: float, load: float) -> dict:
    return {
        "files": 1, "bytes": 2**20, "mib_per_s": {"ours_save": 1, "plain_upload": 1, "ours_load": 1, "plain_download": 1},
        "save_vs_plain": save, "load_vs_plain": load, "plain_upload_setting": {"threads": 8}, "plain_download_setting": {"threads": 1},
    }


def test_rows_show_the_median_with_the_min_max_of_their_repeats():
    from bench.common import Sample
    from bench.predict_bench import summarize

    # 100 items in 0.8, 1.0 and 1.25 s: 125, 100 and 80 items/s
    samples = {m: [Sample(w, w, 0.0) for w in (1.0, 0.8, 1.25)] for m in MEASURES if m != "ray_data"}
    setting = summarize(samples, 100, work=1, model_factor=2.0, ncpu=2) | {"model": "numpy", "device_ms_per_item": 0.0}
    assert setting["items_per_s"]["predict_dataset"] == {"median": 100.0, "min": 80.0, "max": 125.0}
    results = {"predict": {"local": {"n": 100, "batch_size": 4, "settings": {"model_bound": setting}}}}
    md = report.render(results)
    assert "| local | model_bound | NumPy, 1 layers | 100 (80-125) | 100 (80-125) |" in md
    loader = next(r for r in report.evaluate_targets(results) if r["target"].endswith("dataloader_loop"))
    assert loader["detail"] == "100/s (80-125) vs 100/s (80-125)"
