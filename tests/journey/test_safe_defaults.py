"""Safe defaults (issue 12): mistakes are refused before any work, and one bad item fails alone.

Every test drives the ``model-adapter`` command as a user would and checks both what it
says and what it left in the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter_base import Registry
from adapter_base.cli.main import main
from journey_support import shades
from support.images import png_bytes

STACKING = "journey_support:StackingAdapter"


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


TESTS = Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``model-adapter`` subprocess that imports the journey adapters."""
    path = os.pathsep.join([str(TESTS / "journey"), str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


def cli(*argv: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``model-adapter ARGV`` as a user runs it: its own process, real stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "adapter_base.cli.main", *argv], capture_output=True, text=True, timeout=timeout, env=cli_env(**env))


def error_line(err: str) -> str:
    """The one error line of a failed command (progress bars and warnings aside)."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def create(capsys, store: str, name: str = "m", adapter: str = STACKING, dataset: str = "shades", *extra: str) -> None:
    code, _, err = run(capsys, "model", "create", "--name", name, "--adapter", adapter, "--dataset", dataset, *extra, "--store", store)
    assert code == 0, err


def predictions(store: str, model: str, dataset: str = "shades") -> int:
    with Registry.open(store) as registry:
        m = registry.get_model(model)
        return sum(registry.get_predictions(it, m.id) is not None for it in registry.iter_items(registry.get_dataset(dataset)))


def model_state(store: str, model: str = "m") -> tuple[int, str]:
    with Registry.open(store) as registry:
        m = registry.get_model(model)
        return m.version, m.status


# --- 1. no predictions from a model that was never trained -------------------------------


def test_predict_and_evaluate_refuse_a_model_with_no_trained_version(capsys, store):
    with Registry.open(store) as registry:
        shades(registry)
    create(capsys, store)
    for command in ("predict", "evaluate"):
        code, out, err = run(capsys, command, "m", "--dataset", "shades", "--store", store)
        assert code == 1 and out == ""
        assert "model m has no trained version; run `model-adapter train m`" in error_line(err)
    assert predictions(store, "m") == 0 and model_state(store) == (0, "created")

    code, out, err = run(capsys, "predict", "m", "--dataset", "shades", "--allow-untrained", "--store", store)
    assert code == 0, err
    assert "14 predicted, 0 already done, 0 failed of 14" in out


def test_an_adapter_that_predicts_untrained_says_so(capsys, store):
    with Registry.open(store) as registry:
        shades(registry)
    create(capsys, store, "pre", "journey_support:PretrainedAdapter")
    code, out, err = run(capsys, "evaluate", "pre", "--dataset", "shades", "--store", store)
    assert code == 0, err
    assert "'accuracy': 1.0" in out


# --- 2. one bad item fails alone ----------------------------------------------------------


def test_a_text_file_among_images_fails_alone_with_its_own_error(capsys, store):
    with Registry.open(store) as registry:
        ds = shades(registry, sizes={"train": 2, "validation": 2, "test": 15})
        notes = registry.add_item(ds, "test/notes.txt", b"not an image", mimetype="text/plain", subsets=["test"])
    create(capsys, store)
    assert run(capsys, "train", "m", "--store", store)[0] == 0

    code, out, err = run(capsys, "predict", "m", "--dataset", "shades", "--subset", "test", "--batch-size", "16", "--store", store)
    assert code == 1
    assert "15 predicted, 0 already done, 1 failed of 16" in out
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].strip().startswith(f"FAILED {notes.id} (test/notes.txt) at predict: ValueError")
    assert predictions(store, "m") == 15


# --- 3. mistakes caught before any work ---------------------------------------------------


def test_train_refuses_a_subset_without_annotated_items_and_leaves_the_model_alone(capsys, store):
    with Registry.open(store) as registry:
        shades(registry, sizes={"train": 6, "test": 4})  # no validation subset
    create(capsys, store)
    code, out, err = run(capsys, "train", "m", "--store", store)
    assert code == 1
    line = error_line(err)
    assert "Model.subsets.validation" in line and "no item matches {'subset': 'validation'}" in line and "test 4, train 6" in line
    assert model_state(store) == (0, "created")


def test_train_refuses_a_model_and_dataset_without_a_common_label(capsys, store):
    with Registry.open(store) as registry:
        shades(registry)
    create(capsys, store, "m", STACKING, "shades", "--labels", "cat,dog")
    code, _, err = run(capsys, "train", "m", "--store", store)
    assert code == 1 and "share no label" in error_line(err)
    assert model_state(store) == (0, "created")


def test_evaluate_refuses_a_missing_test_subset_before_predicting(capsys, store):
    with Registry.open(store) as registry:
        shades(registry, sizes={"train": 4, "validation": 2})
    create(capsys, store)
    assert run(capsys, "train", "m", "--store", store)[0] == 0
    code, _, err = run(capsys, "evaluate", "m", "--dataset", "shades", "--store", store)
    assert code == 1
    assert "evaluate.filters: dataset shades: no item matches {'subset': 'test'} (its subsets: train 4, validation 2)" in error_line(err)
    assert predictions(store, "m") == 0


def test_evaluate_says_when_every_prediction_failed(capsys, store):
    with Registry.open(store) as registry:
        shades(registry)
    create(capsys, store, "broken", "journey_support:BrokenAdapter")
    assert run(capsys, "train", "broken", "--store", store)[0] == 0
    code, _, err = run(capsys, "evaluate", "broken", "--dataset", "shades", "--store", store)
    assert code == 1
    line = error_line(err)
    assert "every prediction of model broken v1 failed (4 of 4 items; the first, item" in line
    assert "RuntimeError: weights file is corrupt" in line and "no item has both" not in line


# --- 6. a label mismatch is said, with both label sets -----------------------------------


def test_a_label_mismatch_is_warned_with_both_label_sets(capsys, caplog, store):
    with Registry.open(store) as registry:
        shades(registry)
        shades(registry, "renamed", labels=["bright", "dark", "grey"])
    create(capsys, store, "m", STACKING, "shades", "--labels", "bright,dark,unused")
    assert run(capsys, "train", "m", "--store", store)[0] == 0
    assert "labels of model m and dataset shades differ (only the model has [unused]): model labels [bright, dark, unused], dataset labels [bright, dark]" in caplog.text
    caplog.clear()
    assert run(capsys, "predict", "m", "--dataset", "renamed", "--store", store)[0] == 0
    assert "only the model has [unused]; only the dataset has [grey]): model labels [bright, dark, unused], dataset labels [bright, dark, grey]" in caplog.text

    # as a user sees it: one warning line on stderr, before the evaluation's result
    proc = cli("evaluate", "m", "--dataset", "renamed", "--store", store)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "dataset labels [bright, dark, grey]" in warnings[0]
    assert "evaluated m v1" in proc.stdout
