"""Smoke tests of ``bench/memory_bench.py`` and ``bench/pipeline_bench.py``."""

from __future__ import annotations

import pytest

from bench import memory_bench, pipeline_bench


@pytest.mark.slow
def test_peak_rss_is_measured_in_a_child_process(bench_registry, tmp_path):
    uri = str(bench_registry.store.root)
    out = memory_bench.run_backend(bench_registry, uri, "local", sizes=[20, 40], repeats=1, progress=lambda _: None)
    assert set(out["sizes"]) == {"20", "40"}
    for row in out["sizes"].values():
        assert row["peak_rss_mib"] >= row["baseline_rss_mib"] > 10
    assert out["ratio_peak"] > 0


KFP_LOG = """\
12:56:40.808 - INFO - Executing task \x1b[96m'load'\x1b[0m
    [KFP Executor 2026-11-24 12:56:41,000 INFO]: Task 'not-a-kfp-line' finished
12:56:41.099 - INFO - Task \x1b[96m'load'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
12:56:41.100 - INFO - Executing task 'train'
12:56:42.110 - INFO - Task 'train' finished with status SUCCESS
23:59:59.900 - INFO - Executing task 'promote'
00:00:00.150 - INFO - Task 'promote' finished with status SUCCESS
"""


def test_task_times_are_read_from_kfp_local_log_lines():
    times = pipeline_bench.parse_task_times(KFP_LOG)
    assert times == pytest.approx({"load": 0.291, "train": 1.010, "promote": 0.250})


@pytest.mark.slow
@pytest.mark.kfp_local
def test_pipeline_overhead_bench_runs_once(tmp_path):
    out = pipeline_bench.run(tmp_path, repeats=1, progress=lambda _: None)
    assert set(out["per_step"]) == set(pipeline_bench.STEPS)
    for step in out["per_step"].values():
        assert step["kfp_local_s"]["min"] <= step["kfp_local_s"]["median"] <= step["kfp_local_s"]["max"]
        assert step["kfp_local_s"]["median"] > 0 and step["in_process_s"]["median"] >= 0
    assert out["kfp_local_total_s"]["median"] > out["in_process_total_s"]["median"] > 0
