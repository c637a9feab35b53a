"""The README's two commands: `make demo` installs only what the demo needs, `make test` adds the rest."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _dry_run(target: str, venv: Path, *args: str) -> list[str]:
    """The commands `make -n TARGET` would run against a venv that does not exist yet."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VENV_EXTRAS", "DEMO_EXTRAS")}
    proc = subprocess.run([MAKE, "-n", target, f"VENV={venv}", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def _extras(lines: list[str]) -> list[str]:
    """The extras sets pip is asked for, in order (`pip install -e '.[a,b]'`)."""
    return [m.group(1) for line in lines if (m := re.search(r"pip install .*-e '\.\[([^\]]*)\]'", line))]


def test_make_demo_asks_pip_for_the_examples_only_and_no_torch(tmp_path: Path) -> None:
    lines = _dry_run("demo", tmp_path / "venv")
    assert _extras(lines) == ["examples"]
    pip_lines = [line for line in lines if "pip install" in line]
    assert not [line for line in pip_lines if "torch" in line or "dev" in line], pip_lines
    # ... and then runs the demo on the .demo home.
    assert any("model-adapter demo" in line and "MODEL_ADAPTER_HOME=" in line for line in lines), lines


def test_make_test_adds_the_dev_and_torch_extras(tmp_path: Path) -> None:
    assert _extras(_dry_run("test", tmp_path / "venv")) == ["dev,torch"]
    assert _extras(_dry_run("test", tmp_path / "venv", "VENV_EXTRAS=dev")) == ["dev"]


def test_each_extras_set_has_its_own_stamp(tmp_path: Path) -> None:
    """After `make demo`, `make test` still installs its extras; after both, neither reinstalls."""
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed-examples").touch()
    assert _extras(_dry_run("demo", venv)) == []
    assert _extras(_dry_run("test", venv)) == ["dev,torch"]
    (venv / ".installed-dev,torch").touch()
    assert _extras(_dry_run("test", venv)) == []


def test_the_demo_extra_holds_what_the_demo_imports() -> None:
    """The `examples` extra is enough for the digits demo: scikit-learn (its dataset); no torch, no pytest."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower() for req in extras["examples"]}
    assert "scikit-learn" in names and not names & {"torch", "pytest"}
    demo_sources = "\n".join(p.read_text() for p in (REPO / "examples" / "digits").glob("*.py"))
    assert not re.search(r"^\s*(import|from)\s+(torch|pytest|hypothesis)\b", demo_sources, re.M)
