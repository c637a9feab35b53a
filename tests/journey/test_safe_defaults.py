"""Safe defaults (issue 12): mistakes are refused before any work, and one bad item fails alone.

Every test drives the ``model-adapter`` command as a user would and checks both what it
says and what it left in the store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapter_base import Registry
from adapter_base.cli.main import main
from adapter_base.errors import ValidationError
from adapter_base.steps.finalize import finalize
from adapter_base.steps.load import load
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
    path = os.pathsep.join([str(TESTS.parent), str(TESTS / "journey"), str(TESTS), os.environ.get("PYTHONPATH", "")])
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
    assert ": accuracy 1.000, " in out


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
    assert "Model.subsets.validation" in line and "has no item in subset 'validation' (subsets: train 6, test 4)" in line
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
    assert "evaluate.filters: dataset shades has no item in subset 'test' (subsets: train 4, validation 2)" in error_line(err)
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


def test_pipeline_run_refuses_an_unknown_metric_or_a_missing_test_subset_before_starting(capsys, store, tmp_path):
    with Registry.open(store) as registry:
        shades(registry, sizes={"train": 6, "validation": 4})  # no test subset
    create(capsys, store)
    root = tmp_path / "kfp-root"
    base = ("pipeline", "run", "train", "--local", "--adapter", STACKING, "--model", "m", "--store", store, "--pipeline-root", str(root))
    cases = [
        (("--metric", "f1"), "no metric 'f1' for a classification model (output_type 'classification'); available: accuracy, count, macro_f1"),
        (("--metric", "accuracy", "--threshold", "90"), "accuracy is a score in [0, 1]; threshold 90 can never be reached"),
        ((), "evaluate.filters: dataset shades has no item in subset 'test' (subsets: train 6, validation 4)"),
    ]
    for extra, fragment in cases:
        start = time.monotonic()
        code, out, err = run(capsys, *base, *extra)
        assert code == 1 and out == ""
        assert fragment in error_line(err)
        assert time.monotonic() - start < 5, "refused only after starting the run"
    assert not root.exists(), "kfp.local was started"
    assert model_state(store) == (0, "created")


def test_a_submitted_run_refused_by_its_load_step_leaves_the_model_alone(capsys, store):
    """A run submitted to a cluster is checked by its first step; the exit step then leaves the model as it was."""
    with Registry.open(store) as registry:
        shades(registry)
    create(capsys, store)
    with pytest.raises(ValidationError, match="no metric 'f1'"):
        load(STACKING, "m", store_uri=store, run_id="run-1", metric="f1", threshold=0.9, test_filters={"subset": "test"})
    said = finalize("m", "run-1", "FAILED", "load failed", store_uri=store)
    assert "refused before any work" in said and "left as it is" in said
    assert model_state(store) == (0, "created")
    # the same step passes a sound run on
    ref = load(STACKING, "m", store_uri=store, run_id="run-2", metric="macro_f1", threshold=0.9, test_filters={"subset": "test"})
    assert ref.version == 0


# --- 5. a mistyped store fails at once, and reading never creates one ---------------------


def test_a_mistyped_local_store_is_refused_and_never_created(capsys, tmp_path):
    missing = tmp_path / "nonexistent" / "dir" / "store"
    for store in (str(missing), f"file://{missing}"):
        for argv in (("model", "list"), ("dataset", "list"), ("model", "show", "m"), ("predict", "m", "--dataset", "d")):
            code, out, err = run(capsys, *argv, "--store", store)
            assert code == 1 and out == ""
            assert error_line(err) == (
                f"error: StoreError: no store at {missing} (does not exist): check --store / $MODEL_ADAPTER_STORE; "
                "a store is created only by `model-adapter dataset import` or `model create`"
            )
    assert not (tmp_path / "nonexistent").exists()
    # creating one is explicit
    images = tmp_path / "pets" / "train" / "cat"
    images.mkdir(parents=True)
    (images / "a.png").write_bytes(png_bytes(5))
    code, out, err = run(capsys, "dataset", "import", str(tmp_path / "pets"), "--store", str(missing))
    assert code == 0, err
    assert missing.is_dir() and run(capsys, "dataset", "list", "--store", str(missing))[1].splitlines()[1].startswith("pets ")


@pytest.mark.s3
def test_an_s3_store_that_cannot_be_used_fails_at_once_in_one_line(s3_server, s3_bucket, tmp_path):
    env = {**s3_server.env(), "MODEL_ADAPTER_S3_PATH_STYLE": "true"}
    free = __import__("socket").socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    cases = [
        ({}, "s3://nobucket/models", "S3 bucket 'nobucket' does not exist at"),
        ({"AWS_SECRET_ACCESS_KEY": "not-the-secret-key"}, f"s3://{s3_bucket}/p", "credentials"),
        ({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}, f"s3://{s3_bucket}/p", f"the S3 server at http://127.0.0.1:{port} does not answer"),
    ]
    for extra, uri, fragment in cases:
        start = time.monotonic()
        proc = cli("model", "list", "--store", uri, **{**env, **extra})
        seconds = time.monotonic() - start
        assert proc.returncode == 1 and proc.stdout == ""
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: StoreError: ") and fragment in lines[0], proc.stderr
        assert seconds < 8, f"{uri}: {seconds:.1f}s to fail"
        assert "not-the-secret-key" not in proc.stderr


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


# --- 4. Ctrl-C stops at once and says how to resume --------------------------------------


def interrupt_when_predicting(argv: list[str], marker: Path, wait_s: float = 180) -> tuple[subprocess.CompletedProcess, float, int]:
    """Start ``model-adapter ARGV`` with a predict that takes a minute, press Ctrl-C once it predicts;
    returns the finished process, the seconds it took to exit, and the pid that was predicting."""
    env = cli_env(JOURNEY_PREDICT_PAUSE_S="60", JOURNEY_MARKER=str(marker))
    proc = subprocess.Popen([sys.executable, "-m", "adapter_base.cli.main", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + wait_s
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "predict never started"
            time.sleep(0.1)
        time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err), time.monotonic() - start, int(marker.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def trained_shades(capsys, store: str) -> None:
    with Registry.open(store) as registry:
        shades(registry)
    create(capsys, store)
    assert run(capsys, "train", "m", "--store", store)[0] == 0


def test_ctrl_c_during_predict_stops_and_names_the_resume_command(capsys, store, tmp_path):
    trained_shades(capsys, store)
    argv = ["predict", "m", "--dataset", "shades", "--store", store]
    proc, seconds, _ = interrupt_when_predicting(argv, tmp_path / "predicting")
    assert proc.returncode == 130 and seconds < 10
    said = [line for line in proc.stderr.splitlines() if line.startswith("interrupted")]
    assert said == [f"interrupted; to resume: model-adapter predict m --dataset shades --store {store} --resume"]


@pytest.mark.slow
@pytest.mark.kfp_local
def test_ctrl_c_during_pipeline_run_stops_every_step_at_once(capsys, store, tmp_path):
    trained_shades(capsys, store)
    argv = ["pipeline", "run", "predict", "--local", "--adapter", STACKING, "--model", "m", "--dataset", "shades",
            "--shards", "2", "--store", store, "--pipeline-root", str(tmp_path / "root")]
    proc, seconds, step_pid = interrupt_when_predicting(argv, tmp_path / "predicting")
    assert proc.returncode == 130, proc.stderr
    assert seconds < 10, f"took {seconds:.1f}s to stop (retried the shard?)"
    [last] = [line for line in proc.stderr.splitlines() if line.startswith("interrupted")]
    assert last.startswith("interrupted: local predict run stopped after ") and "items predicted so far are kept" in last
    assert last.endswith(f"; to resume: model-adapter {' '.join(argv)} --resume")
    assert gone(step_pid), "a step process outlived the run"
