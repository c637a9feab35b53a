"""``model-adapter argo run --local``: the rendered WorkflowTemplates run step by step (each container's command and
args as a subprocess), both DAGs, store on SeaweedFS: ``when``, ``withParam`` and ``onExit`` honoured."""

from __future__ import annotations

import json

import pytest

from adapter_base import Registry
from adapter_base.cli.main import main
from pipelines.argo.local import SpecError, run_workflow
from pipelines.argo.workflow import render
from pipelines_support import ADAPTER, DATASET, MODEL, make_digits

pytestmark = [pytest.mark.slow, pytest.mark.s3]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["argo", "run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_then_predict_workflows_on_seaweedfs(s3_store_uri, capsys):
    digits = make_digits(s3_store_uri, limit=120, epochs=3, corrupt=True)
    common = ["--local", "--adapter", ADAPTER, "--model", MODEL, "--store", s3_store_uri]

    # the gate says no: promote is skipped by its `when`, the exit handler leaves the trained model alone
    code, out, err = run(capsys, "train", *common, "--threshold", "0.999", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "Succeeded" and result["summary"]["version"] == 1 and result["summary"]["status"] == "trained"
    assert "production" not in result["summary"]["aliases"]
    assert ">> promote: skipped (when false == true)" in err and "onExit: step finalize" in err
    assert f"run {result['uid']} succeeded; model {MODEL} left as it is" in err

    code, out, err = run(capsys, "train", *common, "--threshold", "0.1", "--quiet")
    assert code == 0, err
    assert "version 2, status trained" in out and "promoted: production -> version 2" in out
    assert err == "", "--quiet holds the step logs back"

    code, out, err = run(capsys, "predict", *common, "--dataset", DATASET, "--shards", "3", "--alias", "production", "--json")
    assert code == 1, err  # the corrupt item failed, by name; every other item is predicted
    summary = json.loads(out)["summary"]
    assert (summary["shards"], summary["total"], summary["succeeded"], summary["failed"]) == (3, 121, 120, 1)
    assert summary["failures"][0]["item_id"] == digits.corrupt_item_id and summary["model_versions"] == [2]
    assert err.count("step predict_shard (attempt 1)") == 3


def test_a_failed_step_stops_the_dag_and_the_exit_handler_records_it(local_store_uri, capsys):
    make_digits(local_store_uri, limit=60, epochs=1)
    code, out, err = run(capsys, "train", "--local", "--quiet", "--adapter", "examples.digits.adapter:NoSuchAdapter", "--model", MODEL, "--store", local_store_uri)
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1].startswith("error: WorkflowRunError: workflow failed: step load failed")
    assert ">> train:" not in err and "onExit: step finalize" in err
    assert "the last 40 lines of the step logs (run without --quiet for all):" in err
    with Registry.open(local_store_uri) as registry:
        model = registry.get_model(MODEL)
        assert model.status == "failed" and model.version == 0


def test_the_local_check_refuses_what_it_cannot_resolve(tmp_path):
    doc = render("predict", "model-adapter:dev", "cpu")
    with pytest.raises(SpecError, match="workflow parameter\\(s\\) adapter, model, dataset need a value"):
        run_workflow(doc, {}, workdir=tmp_path)
    with pytest.raises(SpecError, match="parameter\\(s\\) nope are not declared"):
        run_workflow(doc, {"nope": "1"}, workdir=tmp_path)
    broken = json.loads(json.dumps(doc))
    for t in broken["spec"]["templates"]:
        if t["name"] == "load":
            t["container"]["args"][1] = "{{workflow.parameters.adaptr}}"
    with pytest.raises(SpecError, match="template load: \\{\\{workflow.parameters.adaptr\\}\\} does not resolve"):
        run_workflow(broken, {"adapter": ADAPTER, "model": MODEL, "dataset": DATASET, "store-uri": str(tmp_path / "s")}, workdir=tmp_path)
