"""Issue 23, point 10: predict and evaluate bars count to a known total, and log lines never split a bar."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cli_support import CHATTY_ADAPTER, ok, trained_digits

EXE = str(Path(sys.executable).parent / "model-adapter")
HERE = Path(__file__).parent


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent.parent), str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([EXE, *argv], capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)


def test_bars_have_totals_and_log_lines_stay_off_them(capsys, tmp_path):
    store = str(tmp_path / "store")
    trained_digits(capsys, store)
    s = ("--store", store)
    ok(capsys, "model", "update", "mlp", "--config", "batch_size=3", *s)  # three predict calls, three log lines
    for command in ("predict", "evaluate"):
        proc = cli(command, "mlp", "--adapter", CHATTY_ADAPTER, "--dataset", "digits", "--subset", "test", *s)
        assert proc.returncode == 0, proc.stderr
        assert re.search(rf"{command} mlp: 100%\|[^|\n\r]*\| 9/9 \[", proc.stderr), proc.stderr
        said = [line for line in proc.stderr.split("\n") if "adapter says" in line]
        assert len(said) == 3, proc.stderr
        for line in said:  # each on a line of its own: no bar before it on the same line
            assert re.match(r"\d{4}-\d\d-\d\d [\d:,]+ WARNING chatty: adapter says: a batch of \d+$", line.split("\r")[-1]), repr(line)
            assert "%|" not in line, repr(line)
