"""The cloud-latency bench (``bench/latency_bench.py``): what it reports and how the report shows it."""

from __future__ import annotations

import pytest

from bench import report
from bench.latency_bench import run


@pytest.mark.slow
@pytest.mark.s3
def test_the_run_server_and_proxy_cpu_are_counted_apart(tmp_path):
    out = run(tmp_path, n=40, latency_ms=5.0, progress=lambda _: None)
    assert out["items"] == 40
    for key in ("cpu_ms_per_item", "server_cpu_ms_per_item", "proxy_cpu_ms_per_item"):
        assert out[key] > 0, key
    assert out["server_and_proxy_cpu_ms_per_item"] == pytest.approx(out["server_cpu_ms_per_item"] + out["proxy_cpu_ms_per_item"], abs=0.002)
    total = out["cpu_ms_per_item"] + out["server_and_proxy_cpu_ms_per_item"]
    assert out["cpu_bound_items_per_s"] == pytest.approx(1000 * out["cpus"] / total, rel=0.01)


def test_the_latency_table_shows_each_process_cpu_and_what_the_cpus_allow():
    lat = {"items": 2000, "latency_ms": 20.0, "requests_per_item": 2.01, "gets_per_item": 1.0, "puts_per_item": 1.0, "requests": {"list": 2},
           "in_flight": 32, "items_per_s": 150.0, "bound_items_per_s": 800.0, "fraction_of_bound": 0.19, "cpu_ms_per_item": 3.1,
           "server_and_proxy_cpu_ms_per_item": 3.4, "server_cpu_ms_per_item": 2.8, "proxy_cpu_ms_per_item": 0.6, "cpu_bound_items_per_s": 307.7, "met_requests": True, "met_throughput": False,
           "loadavg": [1, 1, 1]}  # fmt: skip
    md = report.render({"latency": lat})
    assert "CPU ms/item (run; server; proxy)" in md
    assert "| 0.19 | 3.10; 2.80; 0.60 | 308 |" in md


def test_repeated_runs_report_each_varying_figure_as_its_median_and_range():
    from bench.latency_bench import VARYING, _combined

    runs = [{"items_per_s": rate, "requests_per_item": 2.0, **{k: rate / 100 for k in VARYING if k != "items_per_s"}} for rate in (300.0, 240.0, 330.0)]
    out = _combined(runs)
    assert out["repeats"] == 3 and out["requests_per_item"] == 2.0
    assert out["items_per_s"] == {"median": 300.0, "min": 240.0, "max": 330.0}
    assert out["fraction_of_bound"] == {"median": 3.0, "min": 2.4, "max": 3.3}
    assert _combined(runs[:1])["items_per_s"] == 300.0  # one run: plain figures
    lat = {"items": 2000, "latency_ms": 20.0, "requests_per_item": 2.01, "gets_per_item": 1.0, "puts_per_item": 1.0, "requests": {"list": 2},
           "in_flight": 32, "items_per_s": {"median": 330.0, "min": 300.0, "max": 340.0}, "bound_items_per_s": 800.0,
           "fraction_of_bound": {"median": 0.41, "min": 0.38, "max": 0.43}, "cpu_ms_per_item": {"median": 2.5, "min": 2.4, "max": 2.6},
           "server_cpu_ms_per_item": {"median": 2.3, "min": 2.2, "max": 2.4}, "proxy_cpu_ms_per_item": {"median": 0.3, "min": 0.3, "max": 0.4},
           "cpu_bound_items_per_s": {"median": 392.0, "min": 380.0, "max": 400.0}, "met_requests": True, "met_throughput": False, "loadavg": [1, 1, 1]}  # fmt: skip
    md = report.render({"latency": lat})
    assert "| 330.0 (300.0-340.0) | 800.0 | 0.41 (0.38-0.43) |" in md


@pytest.mark.slow
@pytest.mark.s3
@pytest.mark.parametrize("configuration", [{}, {"write_in_processes": True}, {"write_in_processes": False}])
def test_each_item_counts_one_put_wherever_its_set_was_written(tmp_path, configuration):
    """The sets written from the writing processes are not seen by the counting store here; those written by the
    threads are: each item is one PUT either way (on S3 the default sends a batch to the processes only while
    predict is CPU-bound, so both happen in one run)."""
    out = run(tmp_path, n=48, latency_ms=2.0, configuration=configuration, progress=lambda _: None)
    assert out["puts_per_item"] == pytest.approx(1.0)
    assert out["gets_per_item"] == pytest.approx(1.0, abs=0.05)
