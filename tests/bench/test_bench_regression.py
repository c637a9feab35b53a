"""``bench/regression.py``: a run is compared row by row with the committed results, and every row
more than 15% worse is named.

On results files the bench wrote, kept in ``data/``: ``results_full_run.json`` is a full run's
``bench/results/latest.json`` (2026-11-29, figures as plain medians); ``results_quick_run.json``
a ``python -m bench --quick`` run with every section (figures as median with min-max).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bench import regression
from bench.common import REPO, Sample
from bench.predict_bench import summarize

DATA = Path(__file__).parent / "data"


@pytest.fixture
def committed() -> dict:
    return json.loads((DATA / "results_full_run.json").read_text())


@pytest.fixture
def quick() -> dict:
    return json.loads((DATA / "results_quick_run.json").read_text())


def _scale(results: dict, path: str, factor: float) -> None:
    """Multiply the figure at ``path`` (``a/b/c``): a number, or every field of a spread."""
    *parents, last = path.split("/")
    node = results
    for p in parents:
        node = node[p]
    value = node[last]
    node[last] = {k: v * factor for k, v in value.items()} if isinstance(value, dict) else value * factor


def _worse(base: dict, new: dict) -> set[str]:
    return {f"{c.base.row} [{c.base.unit}]" for c in regression.compare(base, new).worse}


def test_every_section_of_the_committed_results_has_rows(committed):
    rows = regression.figures(committed)
    sections = {key.split(" / ")[0].split(" [")[0] for key in rows}
    assert {"predict", "memory", "artifacts", "pipeline", "latency"} <= sections
    assert "predict / local / device_bound / predict_dataset [items/s]" in rows
    assert rows["memory / local / 20000 [peak RSS MiB]"].higher_is_better is False
    assert rows["artifacts / large / ours_save [MiB/s]"].higher_is_better is True
    assert not regression.compare(committed, committed).worse


def test_a_row_20_percent_slower_is_named_and_one_10_percent_slower_is_not(committed):
    new = copy.deepcopy(committed)
    _scale(new, "predict/local/settings/device_bound/items_per_s/predict_dataset", 0.8)
    _scale(new, "predict/s3/settings/model_bound/items_per_s/dataloader_loop", 0.9)
    _scale(new, "artifacts/small/mib_per_s/ours_load", 1.3)  # faster: never named
    assert _worse(committed, new) == {"predict / local / device_bound / predict_dataset [items/s]"}


def test_lower_is_better_figures_are_worse_when_they_grow(committed):
    new = copy.deepcopy(committed)
    _scale(new, "memory/local/sizes/20000/peak_rss_mib", 1.2)
    _scale(new, "memory/s3/sizes/20000/peak_rss_mib", 0.8)  # less memory: better
    _scale(new, "pipeline/per_step/train/kfp_local_s", 1.25)
    _scale(new, "latency/cpu_ms_per_item", 1.1)
    _scale(new, "pipeline/per_step/promote/in_process_s", 3.0)  # 1 ms -> 3 ms: under the noise floor of seconds
    assert _worse(committed, new) == {"memory / local / 20000 [peak RSS MiB]", "pipeline / train [s under kfp.local]"}


def test_rows_on_one_side_only_or_at_other_sizes_are_listed_not_failed(committed):
    new = copy.deepcopy(committed)
    del new["latency"]
    del new["predict"]["s3"]["settings"]["device_bound"]["items_per_s"]["ray_data"]  # e.g. Ray not installed
    new["predict"]["local"]["n"] = 500
    _scale(new, "predict/local/settings/model_bound/items_per_s/predict_dataset", 0.5)  # other size: not compared
    new["torch_gpu"]["device"] = "cuda:0 (NVIDIA H100)"
    new["extra"] = {"items_per_s": 10.0}
    result = regression.compare(committed, new)
    assert not result.worse
    ray = "predict / s3 / device_bound / ray_data [items/s]"
    assert set(result.only_baseline) == {"latency [items/s]", "latency [CPU ms/item]", "latency [server+proxy CPU ms/item]", ray}
    assert result.only_current == ["extra [items/s]"]
    other = dict(result.other_sizes)
    assert other["predict / local / model_bound / predict_dataset [items/s]"] == "n differ"
    assert other["torch_gpu / predict_items [items/s]"] == "device differ"
    text = regression.render(result)
    assert f"only in the baseline (not compared):\n  {ray}\n  latency: the whole section (3 rows)" in text
    assert "predict: 14 row(s), n differ" in text and "torch_gpu: 3 row(s), device differ" in text


def test_spreads_of_a_fresh_run_compare_with_plain_medians_of_an_older_one(committed):
    """The bench now records items/s as median with min-max; a baseline with plain numbers has the same rows."""
    old = committed["predict"]["local"]
    n = old["n"]
    base_rate = old["settings"]["device_bound"]["items_per_s"]["predict_dataset"]
    walls = {m: [n / (figure * f) for f in (0.95, 0.98, 1.0, 1.02, 1.05)] for m, figure in old["settings"]["device_bound"]["items_per_s"].items()}
    walls["predict_dataset"] = [n / (base_rate * f) for f in (0.6, 0.65, 0.7, 0.72, 0.9)]  # median 0.7x: 30% slower
    samples = {m: [Sample(w, w, 0.0) for w in v] for m, v in walls.items()}
    new = copy.deepcopy(committed)
    new["predict"]["local"]["settings"]["device_bound"] = summarize(samples, n, work=0, model_factor=1.0, ncpu=2)
    fresh = new["predict"]["local"]["settings"]["device_bound"]["items_per_s"]["predict_dataset"]
    assert fresh["min"] < fresh["median"] < fresh["max"]
    result = regression.compare(committed, new)
    assert not result.only_baseline and not result.only_current
    worse = {c.base.row: c for c in result.worse}
    assert set(worse) == {"predict / local / device_bound / predict_dataset"}
    assert worse["predict / local / device_bound / predict_dataset"].loss == pytest.approx(0.3, abs=0.01)
    # against itself, a spread that reaches the other's range is marked as overlapping
    again = copy.deepcopy(new)
    _scale(again, "predict/local/settings/device_bound/items_per_s/dataloader_loop", 0.8)
    change = next(c for c in regression.compare(new, again).worse if c.base.row.endswith("dataloader_loop"))
    assert change.overlap is False  # 0.8x of a +-5% spread: clear of it
    _scale(again, "predict/local/settings/device_bound/items_per_s/dataloader_loop", 1.2)
    assert not any(c.base.row.endswith("dataloader_loop") for c in regression.compare(new, again).worse)


def test_the_command_names_the_worse_row_and_fails(committed, tmp_path, capsys):
    new = copy.deepcopy(committed)
    _scale(new, "artifacts/large/mib_per_s/ours_save", 0.8)
    base_file, new_file = tmp_path / "base.json", tmp_path / "new.json"
    base_file.write_text(json.dumps(committed))
    new_file.write_text(json.dumps(new))
    assert regression.main([str(new_file), "--baseline", str(base_file)]) == 1
    out = capsys.readouterr().out
    assert "1 more than 15% worse" in out
    assert "artifacts / large / ours_save" in out and "WORSE" in out and "-20.0%" in out
    assert regression.main([str(base_file), "--baseline", str(base_file)]) == 0
    assert regression.main([str(new_file), "--baseline", str(base_file), "--threshold", "0.25"]) == 0
    assert regression.main([str(tmp_path / "nothing.json"), "--baseline", str(base_file)]) == 2
    assert "cannot read bench results" in capsys.readouterr().err


def test_every_section_of_a_fresh_run_has_rows_with_their_spread(quick, committed):
    rows = regression.figures(quick)
    predict = rows["user_compare / local / device_bound / predict [items/s]"]
    assert predict.higher_is_better and predict.low is not None and predict.high is not None
    assert rows["pipeline / train [s under kfp.local]"].low is not None
    assert {"predict", "user_compare", "memory", "artifacts", "pipeline", "latency"} <= {k.split(" / ")[0].split(" [")[0] for k in rows}
    slower = copy.deepcopy(quick)
    _scale(slower, "user_compare/s3/settings/device_bound/items_per_s/predict", 0.8)
    assert _worse(quick, slower) == {"user_compare / s3 / device_bound / predict [items/s]"}
    # a quick run against a full one: its other sizes are not compared, and its new sections are listed
    result = regression.compare(committed, quick)
    assert "predict / local / device_bound / predict_dataset [items/s]" in dict(result.other_sizes)
    assert "user_compare / local / device_bound / predict [items/s]" in result.only_current
    assert not any(c.base.row.startswith(("predict", "artifacts", "latency")) for c in result.changes)


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_the_baseline_defaults_to_the_results_committed_at_head():
    head = regression.committed("HEAD")
    assert regression.figures(head)
    with pytest.raises(ValueError, match="cannot read bench/results/latest.json at git no-such-ref"):
        regression.committed("no-such-ref")


def test_rows_measured_against_a_model_cost_calibrated_apart_are_listed_not_failed(committed):
    """Each run calibrates its model from its own read + decode: a 50% slower device wait lowers every rate by design."""
    new = copy.deepcopy(committed)
    device = new["predict"]["s3"]["settings"]["device_bound"]
    device["device_ms_per_item"] = device["device_ms_per_item"] * 1.5
    for name in device["items_per_s"]:
        _scale(new, f"predict/s3/settings/device_bound/items_per_s/{name}", 0.7)
    model = new["predict"]["local"]["settings"]["model_bound"]
    model["work"] = round(model["work"] * 1.05)  # within 10%: compared
    _scale(new, "predict/local/settings/model_bound/items_per_s/predict_dataset", 0.8)
    result = regression.compare(committed, new)
    assert _worse(committed, new) == {"predict / local / model_bound / predict_dataset [items/s]"}
    other = dict(result.other_sizes)
    why = other["predict / s3 / device_bound / predict_dataset [items/s]"]
    assert why.startswith("model cost differs: device_ms_per_item") and "vs" in why
    assert "model cost differs" in regression.render(result)
