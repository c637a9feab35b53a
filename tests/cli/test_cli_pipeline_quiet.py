"""Issue 12: ``pipeline run --quiet`` prints the result and one line per failed item, not hundreds of log lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import ADAPTER, trained_digits

pytestmark = [pytest.mark.kfp_local, pytest.mark.slow]

EXE = str(Path(sys.executable).parent / "model-adapter")


def pipeline_run(tmp_path: Path, store: str, *extra: str, adapter: str = ADAPTER) -> subprocess.CompletedProcess[str]:
    argv = [EXE, "pipeline", "run", "predict", "--local", "--store", store, "--adapter", adapter, "--model", "mlp",
            "--dataset", "digits", "--shards", "2", "--pipeline-root", str(tmp_path / "root"), *extra]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, env=os.environ.copy(), stdin=subprocess.DEVNULL)


def lines_naming(text: str, what: str) -> list[str]:
    return [line for line in text.splitlines() if what in line]


def test_pipeline_run_quiet_prints_the_result_and_one_line_per_failed_item(capsys, tmp_path):
    store = str(tmp_path / "store")
    trained_digits(capsys, store, limit=40, corrupt=True)

    quiet = pipeline_run(tmp_path, store, "--quiet")
    assert quiet.returncode == 1, quiet.stderr
    assert quiet.stderr == ""
    out = quiet.stdout.splitlines()
    assert len(out) == 2, quiet.stdout
    assert re.match(r"FAILED \w+ \(test/corrupt\.png\) at prepare \(shard [01]\): ValidationError: ", out[0]), out[0]
    assert out[1].startswith("predict pipeline finished in ") and out[1].endswith("40 predicted, 1 failed of 41 in 2 shard(s)")

    # without --quiet the step logs go to stderr; each failed item is still named once there and once in the result
    loud = pipeline_run(tmp_path, store)
    assert loud.returncode == 1
    assert len(loud.stderr.splitlines()) > 100, "the step logs"
    assert len(lines_naming(loud.stdout, "test/corrupt.png")) == 1, loud.stdout
    assert len(lines_naming(loud.stderr, "test/corrupt.png")) == 1, lines_naming(loud.stderr, "test/corrupt.png")


def test_a_failed_quiet_run_shows_the_tail_of_the_step_logs(capsys, tmp_path):
    store = str(tmp_path / "store")
    trained_digits(capsys, store, limit=20)
    proc = pipeline_run(tmp_path, store, "--quiet", adapter="examples.digits.adapter:Missing")
    assert proc.returncode == 1 and proc.stdout == ""
    err = proc.stderr.splitlines()
    assert err[0] == "the last 40 lines of the step logs (run without --quiet for all):"
    assert 1 < len(err) <= 42, proc.stderr
    assert err[-1].startswith("error: ") and "Missing" in err[-1]


def test_quiet_train_run_names_each_item_its_evaluation_failed(capsys, tmp_path):
    store = str(tmp_path / "store")
    trained_digits(capsys, store, limit=40, corrupt=True)
    argv = [EXE, "pipeline", "run", "train", "--local", "--quiet", "--store", store, "--adapter", ADAPTER, "--model", "mlp",
            "--threshold", "0", "--pipeline-root", str(tmp_path / "root")]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=os.environ.copy(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    failed = lines_naming(proc.stdout, "FAILED")
    assert len(failed) == 1 and re.match(r"FAILED \w+ \(test/corrupt\.png\) at evaluate/prepare: ValidationError: ", failed[0]), proc.stdout
    assert "train pipeline finished in " in proc.stdout
    assert re.search(r"^evaluation: accuracy \d\.\d{3,4}, macro_f1 \d\.\d{3,4}, count 6$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^report: file://\S+/models/\w+/evaluations/000002/\w+/report\.html$", proc.stdout, re.M), "a URI, as evaluate prints"
