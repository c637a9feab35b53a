"""The train -> save -> evaluate DAG end to end under ``kfp.local`` with the digits example.

Each step is a subprocess of this interpreter; the store (a local directory, or the
suite's SeaweedFS S3 server) reaches it through the pipeline parameter and the
inherited ``AWS_*`` environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapter_base import Registry
from adapter_base.cli.main import main
from adapter_base.errors import ValidationError
from adapter_base.registry import layout
from kfp_backend import assert_strict_json_files, strict_json
from pipelines.kfp.local import PipelineRunError, run_local
from gated_adapter import GATE_ENV
from pipelines_support import ADAPTER, DATASET, MODEL, make_digits, train_arguments

HERE = Path(__file__).resolve().parent

pytestmark = [pytest.mark.kfp_local, pytest.mark.slow]


def evaluation_keys(store, model_id: str, version: int) -> list[str]:
    prefix = layout.evaluation_prefix(model_id, version, "x").rsplit("/x/", 1)[0] + "/"
    return [o.key for o in store.list(prefix)]


def test_train_dag_saves_evaluates_and_promotes_when_the_threshold_is_met(store_uri, pipeline_root, record_property):
    digits = make_digits(store_uri)
    start = time.monotonic()
    result = run_local("train", train_arguments(store_uri, threshold=0.5), pipeline_root=pipeline_root)
    record_property("train_dag_seconds", round(time.monotonic() - start, 2))
    s = result.summary
    assert (s["version"], s["status"], s["status_message"]) == (1, "trained", None)
    assert s["aliases"] == {"production": 1}
    assert s["evaluation"]["accuracy"] >= 0.5 and s["evaluation"]["version"] == 1

    with Registry.open(store_uri) as registry:
        model = registry.get_model(MODEL)
        assert model.artifacts is not None and {f.path for f in model.artifacts.files} == {"weights.npz", "labels.json"}
        assert "training" in model.metrics and model.metrics["training"].get("val_accuracy") is not None
        keys = evaluation_keys(registry.store, model.id, 1)
        assert any(k.endswith("/metrics.json") for k in keys) and any(k.endswith("/report.html") for k in keys)
        metrics_key = next(k for k in keys if k.endswith("/metrics.json"))
        metrics = registry.store.get_json(metrics_key)
        assert metrics["model_version"] == 1 and metrics["count"] == 60 and metrics["filters"]["subset"] == "test"
        report = registry.store.get_bytes(next(k for k in keys if k.endswith("/report.html")))
        assert b"<html" in report[:500].lower()
        assert not list(registry.store.list(f"models/{digits.model_id}/staging/")), "the staged result was committed and removed"


def test_train_dag_does_not_promote_below_the_threshold(local_store_uri, pipeline_root):
    make_digits(local_store_uri)
    first = run_local("train", train_arguments(local_store_uri, threshold=0.5), pipeline_root=pipeline_root)
    assert first.summary["aliases"] == {"production": 1}

    second = run_local("train", train_arguments(local_store_uri, threshold=0.999), pipeline_root=pipeline_root)
    s = second.summary
    assert s["version"] == 2 and s["status"] == "trained", "the new version is saved and evaluated all the same"
    assert s["aliases"] == {"production": 1}, "the alias stays on the version that met the threshold"
    assert s["evaluation"]["version"] == 2

    third = run_local("train", train_arguments(local_store_uri, threshold=0.0, metric="macro_f1", alias="canary"), pipeline_root=pipeline_root)
    assert third.summary["aliases"] == {"production": 1, "canary": 3}


def test_a_nan_gate_metric_is_not_promoted_the_reason_is_recorded_and_every_output_is_strict_json(local_store_uri, pipeline_root):
    digits = make_digits(local_store_uri)
    with Registry.open(local_store_uri) as registry:
        item = next(iter(registry.iter_items(digits.dataset_id, {"subset": "test"})))
        (label,) = {a.label for a in registry.get_annotations(item).annotations}
    absent = next(lb for lb in map(str, range(10)) if lb != label)
    # One test item: the recall of any other label has no support, so the gate metric is NaN.
    args = train_arguments(local_store_uri, threshold=0.0, metric=f"per_label.{absent}.recall", test_filters={"subset": "test", "item_ids": [item.id]})
    s = run_local("train", args, pipeline_root=pipeline_root).summary
    assert (s["version"], s["status"], s["aliases"]) == (1, "trained", {}), "saved and evaluated, never promoted on NaN"
    promotion = s["promotion"]
    assert promotion["promote"] is False and promotion["value"] == "NaN" and promotion["version"] == 1
    assert promotion["reason"] == f"per_label.{absent}.recall = NaN is not a finite number: not promoted"

    checked = assert_strict_json_files(pipeline_root)
    outputs = {p.parent.name: strict_json(p.read_text()) for p in checked if p.name == "executor_output.json"}
    assert {"load", "train", "commit", "evaluate", "finalize"} <= set(outputs)
    assert outputs["evaluate"]["parameterValues"] == {"Output": False}
    assert "promote" not in outputs, "the gate did not open"


def test_a_failing_step_marks_the_model_failed_with_the_run_and_the_cause(local_store_uri, pipeline_root):
    make_digits(local_store_uri)
    with pytest.raises(PipelineRunError, match="'load'") as err:
        run_local("train", train_arguments(local_store_uri, adapter="examples.digits.adapter:NoSuchAdapter"), pipeline_root=pipeline_root)
    assert "has no attribute 'NoSuchAdapter'" in str(err.value)
    with Registry.open(local_store_uri) as registry:
        model = registry.get_model(MODEL)
    assert model.status == "failed" and model.version == 0
    assert model.status_message.startswith("run ") and ": load: ValidationError:" in model.status_message


def test_a_test_filter_without_items_is_refused_before_training(local_store_uri, pipeline_root):
    make_digits(local_store_uri)
    with pytest.raises(ValidationError, match="has no item in subset 'no-such-subset' \\(subsets: "):
        run_local("train", train_arguments(local_store_uri, test_filters={"subset": "no-such-subset"}), pipeline_root=pipeline_root)
    with Registry.open(local_store_uri) as registry:
        model = registry.get_model(MODEL)
    assert model.version == 0 and model.status == "created", "nothing was trained or saved"
    assert model.aliases == {}


def test_cli_pipeline_run_train_local(local_store_uri, tmp_path, capsys):
    make_digits(local_store_uri)
    argv = ["pipeline", "run", "train", "--local", "--store", local_store_uri, "--adapter", ADAPTER, "--model", MODEL,
            "--dataset", "digits", "--threshold", "0.5", "--pipeline-root", str(tmp_path / "root")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train pipeline finished in" in out and "version 1, status trained" in out and "promoted: production -> version 1" in out


def test_two_overlapping_local_train_runs_commit_once_and_the_overtaken_one_leaves_the_model_alone(local_store_uri, tmp_path):
    """Two `pipeline run train --local` from version 0: one is held in training while the other
    commits, evaluates and promotes version 1; the held one's commit is refused naming both
    versions, and the model keeps version 1, ``trained``, promoted."""
    make_digits(local_store_uri, epochs=2)
    gate = tmp_path / "gate"
    cli = str(Path(sys.executable).parent / "model-adapter")
    argv = [cli, "pipeline", "run", "train", "--local", "--store", local_store_uri, "--adapter", "gated_adapter:GatedDigitsAdapter",
            "--model", MODEL, "--dataset", DATASET, "--threshold", "0.5"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH")]))}
    held = subprocess.Popen(
        [*argv, "--pipeline-root", str(tmp_path / "held")], env={**env, GATE_ENV: str(gate)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not Path(f"{gate}.waiting").exists():
            assert held.poll() is None and time.monotonic() < deadline, "the held run never reached its training"
            time.sleep(0.1)
        quick = subprocess.run([*argv, "--pipeline-root", str(tmp_path / "quick")], env=env, capture_output=True, text=True, timeout=300)
        assert quick.returncode == 0, quick.stdout + quick.stderr
        assert "version 1, status trained" in quick.stdout and "promoted: production -> version 1" in quick.stdout
        gate.touch()
        out, _ = held.communicate(timeout=300)
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()
    assert held.returncode == 1, out
    assert "VersionConflictError" in out and "is at version 1, not at version 0" in out, out
    assert out.rstrip().splitlines()[-1].endswith("moved from version 0 to version 1 (trained) meanwhile: that version stands, this run's result was not kept")
    with Registry.open(local_store_uri) as registry:
        model = registry.get_model(MODEL)
        assert (model.version, model.status, model.status_message, model.aliases) == (1, "trained", None, {"production": 1})
        assert not registry.store.exists(layout.manifest(model.id, 2)), "the overtaken run left a version behind"
