"""The user's comparison (``bench/user_compare.py``): real ``model-adapter predict`` and hand-written loop processes."""

from __future__ import annotations

import json

import pytest

from bench import report
from bench.__main__ import main


@pytest.mark.slow
def test_user_comparison_runs_both_programs_as_processes_and_marks_the_targets(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "b.md"
    main(["--quick", "--only", "user", "--backends", "local", "--user-sizes", "8,24", "--json", str(out_json), "--markdown", str(out_md), "--workdir", str(tmp_path / "work")])
    data = json.loads(out_json.read_text())
    res = data["user_compare"]["local"]
    assert set(res["settings"]) == {"model_bound", "device_bound"}
    for row in res["settings"].values():
        for program in ("predict", "user_loop"):
            assert len(row["seconds"][program]["8"]) == len(row["seconds"][program]["24"]) == 1
            assert row["items_per_s"][program]["min"] <= row["items_per_s"][program]["median"] <= row["items_per_s"][program]["max"]
        # the model's own bound over the loop's rate: the highest ratio any program could reach
        assert row["ceiling_vs_loop"] == pytest.approx(row["model_only"]["median"] / row["items_per_s"]["user_loop"]["median"], rel=0.01)
    targets = {(t["target"], t["case"]): t for t in data["targets"]}
    loop = "model-adapter predict >= 1.2 x the hand-written DataLoader loop (processes, steady state)"
    assert targets[(loop, "local / device_bound")]["met"] in (True, False)
    assert ("model-adapter predict >= 0.95 x the model alone (model-bound)", "local / model_bound") in targets
    md = out_md.read_text()
    assert "### 1b. The user's comparison" in md and "| local | device_bound |" in md


def test_user_comparison_targets_are_marked_from_the_medians():
    row = {
        "work": 3, "device_ms_per_item": 0.0, "ratio": 1.1, "ratio_per_repeat": {"median": 1.1, "min": 0.9, "max": 1.3},
        "items_per_s": {"predict": {"median": 110, "min": 100, "max": 120}, "user_loop": {"median": 100, "min": 90, "max": 110}},
        "model_only": {"median": 120, "min": 110, "max": 130}, "ratio_vs_model_only": 0.917, "ceiling_vs_loop": 1.2,
    }  # fmt: skip
    uc = {"s3": {"small": 8, "large": 24, "repeats": 5, "batch_size": 4, "image_size": 64, "settings": {"model_bound": row, "device_bound": {**row, "device_ms_per_item": 1.0}}}}
    rows = {(r["target"].split(" x ")[-1], r["case"]): r for r in report.evaluate_targets({"user_compare": uc})}
    assert rows[("the hand-written DataLoader loop (processes, steady state)", "s3 / model_bound")]["met"] is True
    assert rows[("the hand-written DataLoader loop (processes, steady state)", "s3 / device_bound")]["met"] is False
    assert rows[("the model alone (model-bound)", "s3 / model_bound")]["met"] is False
    assert "110/s (100-120) vs 100/s (90-110)" in rows[("the hand-written DataLoader loop (processes, steady state)", "s3 / device_bound")]["detail"]
    assert "| s3 | device_bound | device 1.00 ms/item | 110 (100-120) | 100 (90-110) | 1.10 (0.90-1.30) | 120 | 0.92 | 1.20 |" in report.render({"user_compare": uc})


def test_more_cost_models_are_named_kinds_and_factors():
    from bench.user_compare import parse_costs

    assert parse_costs(["light=device:0.3", "heavy=numpy:4"]) == {"light": ("device", 0.3), "heavy": ("numpy", 4.0)}
    for bad in ("light", "light=gpu:1", "light=device:", "light=device:x", "=numpy:1", "light=device:-1"):
        with pytest.raises(ValueError, match="NAME=device:FACTOR"):
            parse_costs([bad])
