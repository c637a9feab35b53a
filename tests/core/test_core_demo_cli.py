"""The digits demo flow and the ``model-adapter`` command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from adapter_base import NotFoundError, Registry
from adapter_base.cli.main import build_parser, main
from examples.digits.demo import run_demo

ADAPTER = "examples.digits.adapter:DigitsAdapter"


# --------------------------------------------------------------------------- demo


@pytest.mark.slow
def test_run_demo_reaches_high_accuracy_and_reports(local_registry):
    lines: list[str] = []
    result = run_demo(local_registry, epochs=15, say=lines.append)
    text = "\n".join(lines)
    assert result.counts == {"train": 1258, "validation": 270, "test": 269}
    assert "train 1258, validation 270, test 269 items, 1797 in all" in text
    accuracy = result.evaluation.summary["accuracy"]
    assert accuracy >= 0.90
    assert re.search(r"evaluation on test \(269 items\): accuracy 0\.9\d{3}", text)
    model = local_registry.get_model("digits-mlp")
    assert model.version == 1 and model.status == "trained"
    assert f"model id {model.id}, version 1" in text
    report_line = next(line for line in lines if line.startswith("evaluation report: "))
    report_path = Path(urlparse(report_line.split(": ", 1)[1]).path)
    assert report_path.is_file() and report_path.name == "report.html"
    assert result.prediction.ok and result.prediction.succeeded == 269
    assert "269 predicted, 0 already done, 0 failed of 269" in text
    assert model.metrics["evaluation"]["accuracy"] == pytest.approx(accuracy)


# --------------------------------------------------------------------------- help


def subcommand_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append(prefix + (name,))
                paths.extend(subcommand_paths(sub, prefix + (name,)))
    return paths


def test_console_script_help():
    exe = Path(sys.executable).parent / "model-adapter"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    for command in ("dataset", "model", "train", "predict", "evaluate", "demo"):
        assert command in proc.stdout


def test_every_subcommand_has_help(capsys):
    paths = subcommand_paths(build_parser())
    for expected in [("dataset", "import"), ("model", "create"), ("train",), ("predict",), ("evaluate",), ("demo",)]:
        assert expected in paths
    for path in [()] + paths:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0, path
        out = capsys.readouterr().out
        assert out.startswith("usage: model-adapter"), path


# --------------------------------------------------------------------------- the flow


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_cli_import_create_train_evaluate_predict(capsys, store_uri):
    s = ("--store", store_uri)
    code, out, err = run(capsys, "dataset", "import", "digits", "--limit", "100", *s)
    assert code == 0, err
    assert re.search(r"imported dataset digits \(\w+\) into .*: train 70, validation 15, test 15", out)

    code, out, err = run(capsys, "model", "create", "--name", "mlp", "--adapter", ADAPTER, "--dataset", "digits", "--config", "epochs=5", "seed=1", *s)
    assert code == 0, err
    assert out.startswith("created model mlp (")

    code, out, err = run(capsys, "train", "mlp", *s)
    assert code == 0, err
    assert re.search(r"trained mlp \(\w+\): version 1; .*\bval_accuracy 0\.\d{1,4}\b", out)

    code, out, err = run(capsys, "evaluate", "mlp", "--dataset", "digits", *s)
    assert code == 0, err
    assert re.search(r"evaluated mlp v1 on digits \(subset=test\): accuracy [01]\.\d{3,4}, macro_f1 ", out)
    assert re.search(r"report: .*/models/\w+/evaluations/000001/\w+/report\.html", out)

    code, out, err = run(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", "--report", *s)
    assert code == 0, err
    assert "15 predicted, 0 already done, 0 failed of 15" in out
    report = json.loads(out[out.index("{") :])
    assert report["succeeded"] == 15 and report["failures"] == []

    code, out, err = run(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", "--resume", *s)
    assert code == 0 and "0 predicted, 15 already done" in out

    code, out, _ = run(capsys, "model", "list", *s)
    assert code == 0 and out.splitlines()[0].split() == ["NAME", "ID", "VERSION", "STATUS", "LATEST", "EVALUATION"]
    row = out.splitlines()[1].split()
    assert (row[0], row[2], row[3]) == ("mlp", "v1", "trained") and "accuracy " in out
    code, out, _ = run(capsys, "model", "show", "mlp", *s)
    shown = json.loads(out)
    assert shown["version"] == 1 and shown["configuration"]["epochs"] == 5 and shown["adapter"] == ADAPTER
    code, out, _ = run(capsys, "dataset", "show", "digits", *s)
    assert json.loads(out)["items"] == {"train": 70, "validation": 15, "test": 15, "all": 100}
    code, out, _ = run(capsys, "dataset", "list", *s)
    assert [line.split() for line in out.splitlines()] == [["NAME", "ID", "LABELS"], ["digits", json.loads(run(capsys, "dataset", "show", "digits", *s)[1])["id"], "10"]]

    # a corrupt item makes predict exit 1 and name the item
    with Registry.open(store_uri) as registry:
        bad = registry.add_item(registry.get_dataset("digits"), "test/corrupt.png", b"\x89PNG garbage", subsets=["test"])
    code, out, err = run(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", *s)
    assert code == 1
    assert "15 predicted" in out and "1 failed of 16" in out
    assert f"FAILED {bad.id} (test/corrupt.png) at prepare" in out


def test_cli_directory_import(capsys, tmp_path):
    from core_support import png_bytes

    root = tmp_path / "pets"
    for rel in ("train/cat/a.png", "train/dog/b.png", "test/cat/c.png", "loose.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(png_bytes(5))
    store = str(tmp_path / "store")
    code, out, err = run(capsys, "dataset", "import", str(root), "--store", store)
    assert code == 0, err
    assert "train 2, validation 0, test 1" in out
    with Registry.open(store) as registry:
        ds = registry.get_dataset("pets")
        assert ds.labels == ["cat", "dog"]
        by_path = {it.path: it for it in registry.iter_items(ds)}
        assert [a.label for a in registry.get_ground_truth(by_path["train/dog/b.png"])] == ["dog"]
        assert len(registry.get_ground_truth(by_path["loose.png"])) == 0


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (("dataset", "show", "nope"), "NotFoundError: no dataset named or with id 'nope'"),
        (("dataset", "import", "/no/such/dir"), "neither 'digits' nor a directory"),
        (("model", "create", "--name", "m", "--adapter", "no_such_pkg.mod:Cls"), "adapter.import_path"),
        (("train", "ghost"), "no model named or with id 'ghost'"),
        (("predict", "ghost", "--dataset", "d"), "ghost"),
        (("evaluate", "ghost", "--dataset", "d"), "ghost"),
        (("model", "show", "ghost"), "ghost"),
    ],
)
def test_cli_errors_are_one_line_and_exit_1(capsys, tmp_path, argv, fragment):
    (tmp_path / "store").mkdir()  # an empty store: reading commands refuse a missing one
    code, out, err = run(capsys, *argv, "--store", str(tmp_path / "store"))
    assert code == 1
    assert fragment in error_line(err)


def test_cli_error_for_model_without_adapter(capsys, tmp_path):
    store = str(tmp_path / "store")
    with Registry.open(store) as registry:
        registry.create_model("bare")
    code, _, err = run(capsys, "train", "bare", "--store", store)
    assert code == 1 and "Model.adapter" in error_line(err)


def test_cli_debug_raises(tmp_path):
    (tmp_path / "store").mkdir()
    with pytest.raises(NotFoundError, match="nope"):
        main(["--debug", "dataset", "show", "nope", "--store", str(tmp_path / "store")])


def test_cli_uses_model_adapter_store_env(capsys, tmp_path, monkeypatch):
    store = tmp_path / "env-store"
    monkeypatch.setenv("MODEL_ADAPTER_STORE", str(store))
    with Registry.open(str(store)) as registry:
        registry.create_dataset("from-env")
    code, out, _ = run(capsys, "dataset", "list")
    assert code == 0 and out.splitlines()[1].startswith("from-env ")


@pytest.mark.slow
def test_digits_adapter_flow_in_process(registry):
    from examples.digits.adapter import DigitsAdapter
    from examples.digits.dataset import import_digits

    ds = import_digits(registry, limit=200)
    counts = {s: registry.count_items(ds, {"subset": s}) for s in ("train", "validation", "test")}
    assert counts == {"train": 140, "validation": 30, "test": 30}
    model = registry.create_model(
        "digits-small",
        adapter="examples.digits.adapter:DigitsAdapter",
        labels=ds.labels,
        dataset_id=ds.id,
        subsets={"train": {"subset": "train"}, "validation": {"subset": "validation"}},
        configuration={"epochs": 5},
    )
    epochs = []
    adapter = DigitsAdapter(registry=registry)
    trained = adapter.train_model(model, progress=lambda i, n, metrics: epochs.append((i, n, sorted(metrics))))
    assert epochs == [(i, 5, ["loss", "val_accuracy"]) for i in range(5)]
    assert trained.version == 1 and sorted(f.path for f in trained.artifacts.files) == ["labels.json", "weights.npz"]
    assert list(registry.store.list(f"models/{model.id}/checkpoints/")) == []

    fresh = DigitsAdapter(registry=registry)
    result = fresh.evaluate_model("digits-small", ds, filters={"subset": "test"})
    assert result.metrics["count"] == 30 and result.metrics["accuracy"] >= 0.6
    report = fresh.predict_dataset(ds, filters={"subset": "test"}, resume=True)
    assert report.skipped == 30 and report.succeeded == 0  # evaluation already predicted them


@pytest.mark.slow
def test_digits_example_scores_the_same_in_training_and_evaluation_on_colour_images(capsys, tmp_path):
    """The example prepares an item identically for training and prediction: the validation accuracy
    the training run reports is what ``evaluate`` gives on the same subset with the same version."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = tmp_path / "colour-digits"
    rng = np.random.default_rng(3)
    for subset, count in (("train", 120), ("val", 40)):
        for k in range(count):
            index = k if subset == "train" else 1000 + k
            grey = digits.images[index] / 16.0
            tint = np.eye(3)[rng.integers(3)]  # red, green or blue digits: the mean of RGB and PIL's grey disagree
            rgb = (grey[..., None] * tint * 255).round().astype(np.uint8)
            path = folder / subset / str(int(digits.target[index])) / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb, mode="RGB").save(path)
    s = ("--store", str(tmp_path / "store"))
    assert run(capsys, "dataset", "import", str(folder), "--name", "colour", *s)[0] == 0
    code, _, err = run(capsys, "model", "create", "--name", "mlp", "--adapter", ADAPTER, "--dataset", "colour", "--config", "epochs=8", *s)
    assert code == 0, err
    code, _, err = run(capsys, "train", "mlp", *s)
    assert code == 0, err
    code, _, err = run(capsys, "evaluate", "mlp", "--dataset", "colour", "--subset", "validation", *s)
    assert code == 0, err
    with Registry.open(s[1]) as registry:
        model = registry.get_model("mlp")
        trained = model.metrics["training"]["val_accuracy"]
        evaluated = registry.latest_evaluation(model, model.version)["accuracy"]
    assert 0.3 < trained < 1.0  # learned something, and not a subset too easy to tell the two apart
    assert evaluated == pytest.approx(trained, abs=1e-4)


@pytest.mark.parametrize("form", [("--config", "epochs=3", "--config", "seed=2"), ("--config", "epochs=3", "seed=2")])
def test_config_is_repeatable_in_both_forms(capsys, tmp_path, form):
    s = ("--store", str(tmp_path / "store"))
    code, _, err = run(capsys, "model", "create", "--name", "m", "--adapter", ADAPTER, *form, *s)
    assert code == 0, err
    code, _, err = run(capsys, "model", "update", "m", "--config", "hidden_units=8", "--config", "momentum=0.5", *s)
    assert code == 0, err
    with Registry.open(s[1]) as registry:
        assert registry.get_model("m").configuration == {"epochs": 3, "seed": 2, "hidden_units": 8, "momentum": 0.5}
