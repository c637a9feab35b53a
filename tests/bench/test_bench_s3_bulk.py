"""The S3 bulk small-object bench (``bench/s3_bulk_bench.py``): the store's minio client against obstore."""

from __future__ import annotations

import json

import pytest

from bench import report
from bench.__main__ import main
from bench.s3_bulk_bench import ADOPT_RATIO, render

pytest.importorskip("obstore")


@pytest.mark.slow
@pytest.mark.s3
def test_bulk_bench_moves_every_object_both_ways_on_loopback_and_through_the_proxy(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "b.md"
    main(["--quick", "--only", "s3bulk", "--bulk-count", "12", "--json", str(out_json), "--markdown", str(out_md), "--workdir", str(tmp_path / "work")])
    res = json.loads(out_json.read_text())["s3_bulk"]
    cases = {(r["endpoint"], r["size_kib"], r["op"]) for r in res["rows"]}
    assert cases == {(e, s, op) for e in ("loopback", "20 ms") for s in (16, 100) for op in ("put", "get")}
    for row in res["rows"]:
        for client in ("minio", "obstore"):
            assert 0 < row[client]["min"] <= row[client]["median"] <= row[client]["max"]
    assert "### 7. Bulk small-object I/O on S3" in out_md.read_text()


def _row(endpoint: str, op: str, ratio: float) -> dict:
    rate = {"median": 100.0, "min": 90.0, "max": 110.0}
    return {"endpoint": endpoint, "size_kib": 16, "op": op, "minio": rate, "obstore": {k: v * ratio for k, v in rate.items()}, "ratio": ratio,
            "ratio_per_repeat": {"median": ratio, "min": ratio, "max": ratio}, "cpu_ms_per_object": {"minio": {"median": 0.8}, "obstore": {"median": 0.4}}}  # fmt: skip


def test_the_verdict_and_table_come_from_the_rows():
    res = {"count": 2000, "repeats": 5, "latency_ms": 20.0, "concurrency": 16, "loadavg": [1.0, 1.0, 1.0], "adopt": False,
           "rows": [_row("loopback", "get", 1.1), _row("20 ms", "get", ADOPT_RATIO - 0.1)]}  # fmt: skip
    md = "\n".join(render(res))
    assert "**minio kept**" in md
    assert "| 20 ms | 16 KiB | GET | 100 (90-110) | 120 (108-132) | 1.20 (1.20-1.20) | 0.80, 0.40 |" in md
    assert "### 7. Bulk small-object I/O" in report.render({"s3_bulk": res})
