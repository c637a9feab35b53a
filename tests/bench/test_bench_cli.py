"""``python -m bench``: the command writes the JSON and the Markdown table; the report marks targets."""

from __future__ import annotations

import json

from bench import report
from bench.__main__ import main


def test_quick_run_writes_json_and_markdown(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "b.md"
    out_md.write_text(f"# Benchmarks\n\nhand-written intro\n\n{report.BEGIN}\nold table\n{report.END}\n\nhand-written analysis\n")
    main(["--quick", "--only", "predict", "--backends", "local", "--n", "32", "--json", str(out_json), "--markdown", str(out_md), "--workdir", str(tmp_path / "work")])
    data = json.loads(out_json.read_text())
    assert set(data["predict"]["local"]["settings"]) == {"model_bound", "balanced", "io_bound", "device_balanced"}
    assert data["machine"]["cpus"] >= 1 and data["config"]["n"] == 32
    assert any(t["target"].startswith("predict_items <= 1.15") for t in data["targets"])
    md = out_md.read_text()
    assert "hand-written intro" in md and "hand-written analysis" in md and "old table" not in md
    assert "| local | balanced |" in md
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir()), "scratch data is removed"


def test_targets_are_marked_met_or_missed():
    results = {
        "predict": {"s3": {"n": 10, "batch_size": 4, "settings": {"balanced": _setting(1.10, 1.7), "io_bound": _setting(1.30, 1.1)}}},
        "memory": {"local": {"ratio_peak": 1.05, "sizes": {"10": _mem(100), "20": _mem(105)}}},
        "artifacts": {"large": _art(0.95, 0.85)},
        "pipeline": {"overhead_per_step_s": 0.4, "max_step_overhead_s": 0.7, "per_step": {"load": {"kfp_local_s": 1, "in_process_s": 0.5, "overhead_s": 0.5}}, "kfp_local_total_s": 1, "in_process_total_s": 0.5},
    }
    rows = {(r["target"].split()[0], r["case"]): r["met"] for r in report.evaluate_targets(results)}
    assert rows[("predict_items", "s3 / balanced")] is True
    assert rows[("predict_items", "s3 / io_bound")] is False
    assert rows[("artifact", "save_to_model / large")] is True and rows[("artifact", "load_from_model / large")] is False
    assert rows[("peak", "local")] is True
    assert rows[("kfp.local", "mean over the DAG's steps")] is True and rows[("kfp.local", "worst step")] is False
    md = report.render(results)
    assert "**missed**" in md and "| s3 | balanced |" in md


def _setting(ratio: float, speedup: float) -> dict:
    ips = {m: 100.0 for m in report.MEASURES}
    return {
        "work": 1, "model": "numpy", "device_ms_per_item": 0.0, "items_per_s": ips, "median_cpu_s": {m: 1.0 for m in report.MEASURES},
        "ratio_vs_slowest_stage": ratio, "speedup_vs_batch_at_a_time": speedup, "ratio_vs_machine_bound": ratio,
    }


def _mem(peak: float) -> dict:
    return {"peak_rss_mib": peak, "baseline_rss_mib": 90.0, "growth_mib": peak - 90, "items_per_s": 50.0}


def _art(save: float, load: float) -> dict:
    return {
        "files": 1, "bytes": 2**20, "mib_per_s": {"ours_save": 1, "plain_upload": 1, "ours_load": 1, "plain_download": 1},
        "save_vs_plain": save, "load_vs_plain": load, "plain_upload_setting": {"threads": 8}, "plain_download_setting": {"threads": 1},
    }
