"""``model-adapter step NAME``: each pipeline step as a command, outputs in files, chained by hand like a workflow does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter_base import Registry
from adapter_base.cli.main import main
from pipelines_support import ADAPTER, DATASET, MODEL, make_digits


def step(tmp: Path, name: str, *args: str, outputs: tuple[str, ...] = ()) -> dict[str, str]:
    """Run ``model-adapter step NAME ARGS``, each output to a file; returns the outputs' texts."""
    paths = {out: tmp / f"{name}-{out}" for out in outputs}
    argv = ["step", name, *args]
    for out, path in paths.items():
        argv += [f"--output-{out}", str(path)]
    assert main(argv) == 0, argv
    return {out: path.read_text() for out, path in paths.items()}


@pytest.mark.slow
def test_the_train_and_predict_steps_chain_through_their_output_files(tmp_path):
    store = str(tmp_path / "store")
    make_digits(store, limit=120, epochs=3)
    common = ["--store-uri", store]
    load = step(tmp_path, "load", "--adapter", ADAPTER, "--model", MODEL, "--run-id", "r1", "--dataset", DATASET,
                "--test-filters", '{"subset": "test"}', "--metric", "accuracy", "--threshold", "0.1", *common, outputs=("base-model",))
    train = step(tmp_path, "train", "--adapter", ADAPTER, "--base-model", load["base-model"], "--run-id", "r1", *common,
                 outputs=("staged-model", "training-metrics"))
    assert json.loads(train["staged-model"])["staged"] is True
    commit = step(tmp_path, "commit", "--staged-model", train["staged-model"], *common, outputs=("trained-model",))
    assert json.loads(commit["trained-model"])["version"] == 1
    ev = step(tmp_path, "evaluate", "--adapter", ADAPTER, "--trained-model", commit["trained-model"], "--filters", '{"subset": "test"}',
              "--threshold", "0.1", "--run-id", "r1", *common, outputs=("promote", "metrics", "summary", "report"))
    assert ev["promote"] == "true" and "accuracy" in json.loads(ev["metrics"]) and "<html" in ev["report"].lower()
    step(tmp_path, "promote", "--trained-model", commit["trained-model"], "--alias", "production", "--run-id", "r1", *common)
    step(tmp_path, "finalize", "--model", MODEL, "--run-id", "r1", "--state", "Succeeded", *common)
    with Registry.open(store) as registry:
        m = registry.get_model(MODEL)
        assert (m.version, m.status, m.aliases.get("production")) == (1, "trained", 1)

    pload = step(tmp_path, "load", "--adapter", ADAPTER, "--model", MODEL, "--run-id", "p1", "--record-failures", "false",
                 "--alias", "production", *common, outputs=("base-model",))
    split = step(tmp_path, "split_dataset", "--dataset", DATASET, "--num-shards", "2", "--run-id", "p1", *common, outputs=("shards", "shard-numbers"))
    assert json.loads(split["shard-numbers"]) == [0, 1]
    for shard in json.loads(split["shard-numbers"]):
        out = step(tmp_path, "predict_shard", "--adapter", ADAPTER, "--base-model", pload["base-model"], "--shards", split["shards"],
                   "--shard", str(shard), *common, outputs=("report",))
        assert json.loads(out["report"])["shard"] == shard
    merged = step(tmp_path, "merge_reports", "--shards", split["shards"], *common, outputs=("summary", "summary-markdown"))
    summary = json.loads(merged["summary"])
    assert summary["total"] == 120 and summary["succeeded"] == 120 and summary["failed"] == 0


def test_finalize_maps_the_argo_workflow_status(tmp_path):
    """``{{workflow.status}}``: Succeeded leaves the model alone, Failed and Error mark it failed."""
    store = str(tmp_path / "store")
    with Registry.open(store) as registry:
        registry.create_model("m")
    for state, status in (("Succeeded", "created"), ("Failed", "failed"), ("Error", "failed")):
        assert main(["step", "finalize", "--model", "m", "--run-id", f"r-{state}", "--state", state, "--store-uri", store]) == 0
        with Registry.open(store) as registry:
            assert registry.get_model("m").status == status, state


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["commit", "--staged-model", "[1]"], "step.--staged-model: expected a JSON object, got list"),
        (["commit", "--staged-model", "{nope"], "step.--staged-model: '{nope'"),
        (["commit", "--staged-model", '{"model_id": "x"}'], "step.--staged-model: ModelRef.model_name: missing"),
        (["split_dataset", "--dataset", "d", "--run-id", "r", "--num-shards", "x"], "step.--num-shards: 'x'"),
        (["load", "--adapter", "a:B", "--model", "m", "--run-id", "r", "--record-failures", "maybe"], "step.--record-failures: 'maybe'"),
    ],
)
def test_a_bad_input_is_one_line_naming_the_option(tmp_path, capsys, argv, message):
    assert main(["step", *argv, "--store-uri", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
