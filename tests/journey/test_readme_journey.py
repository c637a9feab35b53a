"""The README's journey runs as written: the shell blocks are taken from README.md itself and run
in a temp dir, with a generated image folder and the adapter package the README tells the user to
write (its pyproject.toml and the adapter of "Writing an adapter", also taken from the README)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent
MARKER = "tests/journey/test_readme_journey.py"


def fenced_after(text: str, marker: str) -> tuple[str, str]:
    """The (language, body) of the first fenced block after the line holding ``marker``."""
    start = text.index(marker)
    m = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M).search(text, start)
    assert m, f"no fenced block after {marker!r}"
    return m.group(1), m.group(2)


def marked_blocks() -> dict[str, tuple[str, str]]:
    """Each README block marked for this test, by what the marker says."""
    text = README.read_text()
    out = {}
    for m in re.finditer(rf"<!-- {re.escape(MARKER)} (.*?) -->", text):
        out[m.group(1)] = fenced_after(text, m.group(0))
    return out


def adapter_example() -> str:
    """The adapter class of README's "Writing an adapter"."""
    text = README.read_text()
    lang, body = fenced_after(text, "## Writing an adapter")
    assert lang == "python" and "class BrightnessAdapter(BaseModelAdapter)" in body
    return body


def run_block(body: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a README shell block as written, stopping at the first failing command."""
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", body], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"README block failed ({proc.returncode}):\n{body}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    return proc


def user_env(home: Path) -> dict[str, str]:
    """The user's shell: model-adapter on PATH (an activated venv), no PYTHONPATH of the test runner."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODEL_ADAPTER_STORE", "VIRTUAL_ENV")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MODEL_ADAPTER_HOME"] = str(home)  # the README's default is ~/.model-adapter: keep the test's own
    return env


def write_user_folder(root: Path) -> None:
    """my-images/{train,val,test}/{bright,dark}/ and the my_adapters package, as the README lays them out."""
    levels = {"bright": [230, 210, 180], "dark": [20, 50, 70]}
    for subset in ("train", "val", "test"):
        for label, values in levels.items():
            folder = root / "my-images" / subset / label
            folder.mkdir(parents=True)
            for i, v in enumerate(values):
                Image.new("RGB", (24, 16), (v, v, v)).save(folder / f"{i}.png")
    # One dark-labelled test image the brightness threshold (100) gets wrong: the report has a worst mistake.
    Image.new("RGB", (24, 16), (160, 160, 160)).save(root / "my-images" / "test" / "dark" / "lit.png")
    (root / "my-images" / "test" / "notes.txt").write_text("not an image: skipped and counted")

    blocks = marked_blocks()
    lang, pyproject = blocks["writes this file"]
    assert lang == "toml"
    package = root / "my_adapters"
    (package / "my_adapters").mkdir(parents=True)
    (package / "pyproject.toml").write_text(pyproject)
    (package / "my_adapters" / "__init__.py").write_text("")
    (package / "my_adapters" / "brightness.py").write_text(adapter_example())


@pytest.mark.slow
def test_the_readme_journey_runs_as_written(tmp_path: Path) -> None:
    write_user_folder(tmp_path)
    lang, journey = marked_blocks()["runs this block as written"]
    assert lang == "bash"
    steps = [line.split()[1] for line in journey.splitlines() if line.startswith("model-adapter ")]
    assert steps == ["dataset", "model", "train", "evaluate", "model", "predict", "predictions"], steps

    proc = run_block(journey, tmp_path, user_env(tmp_path / "home"))

    # dataset import: val/ became the validation subset, notes.txt was skipped.
    assert re.search(r"train 6, validation 6, test 7", proc.stdout), proc.stdout
    # evaluate: 6 of 7 right, and a report with the wrong one among the worst mistakes.
    assert re.search(r"^evaluated \S+ v1 on \S+ \(subset=test\): accuracy 0.8571, ", proc.stdout, re.M), proc.stdout
    report_uri = re.search(r"report: (file://\S+report\.html)", proc.stdout).group(1)
    report = Path(report_uri.removeprefix("file://")).read_text()
    assert "<h2>Worst mistakes</h2>" in report and '<img alt="test/dark/lit.png"' in report
    assert "<dd>subset=test</dd>" in report
    # predictions export: one row per test item, the model's labels.
    with open(tmp_path / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"] for r in rows) == sorted(
        [f"test/bright/{i}.png" for i in range(3)] + [f"test/dark/{i}.png" for i in range(3)] + ["test/dark/lit.png"]
    )
    assert {r["path"]: r["label"] for r in rows}["test/dark/lit.png"] == "bright"
    assert all(r["path"].split("/")[1] == r["label"] for r in rows if r["path"] != "test/dark/lit.png")


@pytest.mark.slow
def test_the_adapter_package_of_the_readme_builds(tmp_path: Path) -> None:
    """`pip install -e ./my_adapters` works: the README's pyproject.toml builds a wheel holding the adapter."""
    write_user_folder(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp_path / "wheels"), str(tmp_path / "my_adapters")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "wheels").glob("my_adapters-0.1.0-*.whl")
    import zipfile

    assert "my_adapters/brightness.py" in zipfile.ZipFile(wheel).namelist()


@pytest.mark.slow
def test_the_demo_store_block_runs_after_a_demo(tmp_path: Path) -> None:
    """The block that looks around the demo's store works in a checkout where `make demo` ran."""
    recipe = (REPO / "Makefile").read_text()
    assert re.search(r"^DEMO_HOME \?= \$\(CURDIR\)/\.demo$", recipe, re.M), "the README says the demo's home is .demo/"
    assert "MODEL_ADAPTER_HOME=$(DEMO_HOME) $(VENV)/bin/model-adapter demo --fresh" in recipe
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    env = user_env(tmp_path / "unused-home")
    demo = subprocess.run(
        [str(VENV_BIN / "model-adapter"), "demo", "--fresh"], cwd=tmp_path,
        env={**env, "MODEL_ADAPTER_HOME": str(tmp_path / ".demo")}, capture_output=True, text=True, timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-4000:]

    lang, block = marked_blocks()["runs this block after a demo"]
    assert lang == "bash" and "MODEL_ADAPTER_HOME=$PWD/.demo" in block
    # `make demo` wipes .demo/: a home exported here would send the reader's own work there next
    assert not re.search(r"\bexport\b[^\n]*MODEL_ADAPTER_(HOME|STORE)", block), "the demo block must not export the demo's home"
    proc = run_block(block, tmp_path, env)
    assert re.search(r"^digits-mlp\s+\w+\s+v1\s+trained\s", proc.stdout, re.M), proc.stdout
    lines = (tmp_path / "digits-test.jsonl").read_text().splitlines()
    assert len(lines) == 269 and all(json.loads(line)["annotations"][0]["type"] == "classification" for line in lines)


def test_the_readme_marks_the_blocks_this_test_runs() -> None:
    blocks = marked_blocks()
    assert set(blocks) == {"writes this file", "runs this block as written", "runs this block after a demo"}
    assert shutil.which("bash"), "the blocks are bash"
