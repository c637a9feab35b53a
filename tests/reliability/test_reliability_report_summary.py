"""A run whose report cannot be stored (a full disk) still tells what it did.

``model-adapter predict`` prints the per-item summary (and, with ``--report``, the full
report) before the report is stored; when storing it fails, the summary is still there,
followed by one clear error, and the exit status is 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapter_base import Registry
from adapter_base.registry import layout
from reliability_support import dataset_with_model, one_set_each, report_json, subprocess_env

pytestmark = [pytest.mark.reliability]

#: Runs the CLI in a process whose local store answers ENOSPC when the run report is written.
FULL_DISK_CLI = """
import errno, os, sys
from adapter_base.cli.main import main
from adapter_base.storage.local import LocalStore

put_bytes = LocalStore.put_bytes

def put_bytes_disk_full(self, key, data, *args, **kwargs):
    if key.endswith("prediction-report.json"):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return put_bytes(self, key, data, *args, **kwargs)

LocalStore.put_bytes = put_bytes_disk_full
sys.exit(main(sys.argv[1:]))
"""


def test_a_full_disk_while_storing_the_run_report_keeps_the_summary(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    with Registry.open(store) as registry:
        _, items, model = dataset_with_model(registry, 15)

    args = ["predict", "slow", "--dataset", "shades", "--store", store, "--report"]
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK_CLI, *args], env=subprocess_env(), capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "15 predicted, 0 already done, 0 failed of 15" in result.stdout, result.stdout + result.stderr
    report = report_json(result.stdout)
    assert report["succeeded"] == 15 and report["total"] == 15
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: StoreError: the run report of " + report["run_id"] + " could not be stored"), error
    assert "No space left on device" in error and "were written" in error
    with Registry.open(store) as registry:  # the predictions themselves are there
        assert len(one_set_each(registry, items, model)) == 15
        assert not registry.store.exists(layout.run_prefix(report["run_id"]) + "prediction-report.json")
