"""``model-adapter argo compile|schedule``: the WorkflowTemplates and CronWorkflows, checked against Argo's own
JSON schema (v3.7 and v4.0, strict: no property Argo does not know) and for what the cluster relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter_base.cli.main import build_parser, main
from support.argo_schema import VERSIONS, problems
from pipelines import compute
from pipelines.argo.workflow import render
from pipelines.store_env import STORE_CONFIG_MAP, STORE_SECRET

IMAGE = "registry.example.com/team/my-adapters:1.2.3"
STEPS = {"train": {"load", "train", "commit", "evaluate", "promote", "finalize"}, "predict": {"load", "split-dataset", "predict-shard", "merge-reports"}}
HEAVY = {"train": {"train", "evaluate"}, "predict": {"predict-shard"}}


def templates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def dag(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in templates(doc)["main"]["dag"]["tasks"]}


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict[str, Any]]:
    return {(kind, prof): render(kind, IMAGE, prof) for kind in STEPS for prof in compute.PROFILES}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_object_passes_argos_schema(rendered, tmp_path, version):
    for (kind, prof), doc in rendered.items():
        assert problems(doc, version) == [], (kind, prof)
    out = tmp_path / "cron.yaml"
    assert main(["argo", "schedule", "predict", "--cron", "0 3 * * *", "--cron", "30 12 * * 1-5", "--name", "nightly", "--adapter", "a.b:C",
                 "--model", "m", "--dataset", "d", "--render", str(out), "--timezone", "Europe/Paris"]) == 0
    docs = list(yaml.safe_load_all(out.read_text()))
    assert [d["kind"] for d in docs] == ["WorkflowTemplate", "CronWorkflow"]
    for doc in docs:
        assert problems(doc, version) == [], doc["kind"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_schema_check_refuses_what_argo_would_not_take(rendered, version):
    """The check is real: a wrong type, an unknown field and Argo 3's singular ``schedule`` are errors."""
    doc = json.loads(json.dumps(rendered[("predict", "gpu")]))
    doc["spec"]["activeDeadlineSeconds"] = "a day"
    templates(doc)["predict-shard"]["retryStrategy"]["retryPolicy"] = ["Always"]
    templates(doc)["load"]["container"]["imagePullPolicyy"] = "Always"
    found = "\n".join(problems(doc, version))
    assert "activeDeadlineSeconds" in found and "retryPolicy" in found and "imagePullPolicyy" in found
    cron = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "x"},
            "spec": {"schedule": "0 3 * * *", "workflowSpec": {"workflowTemplateRef": {"name": "t"}}}}
    assert bool(problems(cron, version)) == (version == "v4.0")  # v3.7 still has the field


@pytest.mark.parametrize("kind", list(STEPS))
def test_each_step_runs_the_step_command_with_arguments_it_accepts(rendered, kind):
    """The container's command and args parse as ``model-adapter step NAME ...``: the template and the CLI agree."""
    parser = build_parser()
    doc = rendered[(kind, "gpu")]
    steps = {n: t for n, t in templates(doc).items() if "container" in t}
    assert set(steps) == STEPS[kind]
    for name, t in steps.items():
        c = t["container"]
        assert c["image"] == IMAGE and c["command"][:2] == ["model-adapter", "step"]
        args = parser.parse_args([*c["command"][1:], *c["args"]])
        assert args.step.replace("_", "-") == name
        if "run_id" in vars(args):
            assert args.run_id == "{{workflow.uid}}"
        for out in (t.get("outputs") or {}).get("parameters", []):
            assert getattr(args, "output_" + out["name"].replace("-", "_")) == out["valueFrom"]["path"]


@pytest.mark.parametrize("kind", list(STEPS))
def test_every_step_has_requests_limits_store_env_retries_and_runs_as_non_root(rendered, kind):
    doc = rendered[(kind, "gpu")]
    spec = doc["spec"]
    assert spec["serviceAccountName"] == "model-adapter-workflow"
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 1000
    assert spec["podGC"]["strategy"] == "OnPodSuccess" and spec["ttlStrategy"]["secondsAfterSuccess"] > 0
    assert spec["activeDeadlineSeconds"] > 0
    for name, t in templates(doc).items():
        if "container" not in t:
            continue
        c = t["container"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"]), name
        assert {"configMapRef": {"name": STORE_CONFIG_MAP}} in c["envFrom"]
        assert any(e.get("secretRef", {}).get("name") == STORE_SECRET for e in c["envFrom"])
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        policy = t["retryStrategy"]["retryPolicy"]
        assert policy in ("OnError", "Always"), name  # Argo's default OnFailure never retries a deleted pod
        assert t["retryStrategy"]["backoff"]["duration"]


def test_the_gpu_profile_places_the_heavy_steps_only(rendered):
    gpu = compute.get_profile("gpu")
    for kind in STEPS:
        for name, t in templates(rendered[(kind, "gpu")]).items():
            if "container" not in t:
                continue
            limits, requests = t["container"]["resources"]["limits"], t["container"]["resources"]["requests"]
            if name in HEAVY[kind]:
                assert limits["nvidia.com/gpu"] == "1" and t["nodeSelector"] == gpu.node_selector
                assert t["tolerations"] == gpu.tolerations
                assert requests["ephemeral-storage"] == gpu.ephemeral_storage
                assert t["volumes"] == [{"name": compute.SCRATCH_VOLUME, "emptyDir": {"sizeLimit": gpu.ephemeral_storage}}]
            else:
                assert "nvidia.com/gpu" not in limits and "nodeSelector" not in t and "tolerations" not in t, name
    pool = templates(rendered[("predict", "gpu-pool")])["predict-shard"]
    assert pool["nodeSelector"] == gpu.node_selector and "nvidia.com/gpu" not in pool["container"]["resources"]["limits"]


def test_train_dag_promotes_only_when_evaluate_says_so_and_finalize_is_the_exit_handler(rendered):
    doc = rendered[("train", "gpu")]
    tasks = dag(doc)
    assert [tasks[n].get("depends") for n in ("load", "train", "commit", "evaluate", "promote")] == [None, "load", "train", "commit", "evaluate"]
    assert tasks["promote"]["when"] == "{{tasks.evaluate.outputs.parameters.promote}} == true"
    assert doc["spec"]["onExit"] == "finalize"
    args = templates(doc)["finalize"]["container"]["args"]
    assert args[args.index("--state") + 1] == "{{workflow.status}}"


def test_predict_dag_fans_out_over_the_shards_with_parallelism(tmp_path, capsys):
    out = tmp_path / "p.yaml"
    assert main(["argo", "compile", "predict", "-o", str(out), "--image", IMAGE, "--parallelism", "3", "--retries", "5"]) == 0
    assert "wrote the predict WorkflowTemplate model-adapter-predict" in capsys.readouterr().out
    doc = yaml.safe_load(out.read_text())
    main_t = templates(doc)["main"]
    assert main_t["parallelism"] == 3
    tasks = dag(doc)
    shard = tasks["predict-shard"]
    assert shard["withParam"] == "{{tasks.split-dataset.outputs.parameters.shard-numbers}}"
    assert {"name": "shard", "value": "{{item}}"} in shard["arguments"]["parameters"]
    assert tasks["merge-reports"]["depends"] == "predict-shard"
    assert templates(doc)["predict-shard"]["retryStrategy"] == {
        "limit": "5", "retryPolicy": "Always", "backoff": {"duration": "30s", "factor": "2", "maxDuration": "10m"}}


def test_schedule_renders_a_cron_workflow_for_argo_4(tmp_path):
    out = tmp_path / "c.yaml"
    assert main(["argo", "schedule", "train", "--cron", "0 3 * * *", "--name", "nightly", "--adapter", "a.b:C", "--model", "m",
                 "--config", "epochs=3", "--threshold", "0.8", "--render", str(out)]) == 0
    template, cron = yaml.safe_load_all(out.read_text())
    spec = cron["spec"]
    assert spec["schedules"] == ["0 3 * * *"] and "schedule" not in spec
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] == 300 and spec["timezone"] == "UTC"
    assert spec["workflowSpec"]["workflowTemplateRef"] == {"name": template["metadata"]["name"]}
    params = {p["name"]: p["value"] for p in spec["workflowSpec"]["arguments"]["parameters"]}
    assert params["configuration"] == '{"epochs": 3}' and params["threshold"] == "0.8" and params["test-filters"] == '{"subset": "test"}'
    declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    assert set(params) == declared


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compile", "train", "-o", "{out}", "--image", "Bad Image"], "pipeline.--image: 'Bad Image' is not an image reference"),
        (["compile", "train", "-o", "{out}", "--profile", "tpu"], "unknown compute profile 'tpu'"),
        (["schedule", "train", "--cron", "0 3 * *", "--name", "n", "--adapter", "a:B", "--model", "m", "--render", "{out}"], "argo.--cron: cron expression '0 3 * *' has 4 field(s)"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "x.yaml"
    assert main(["argo", *[a.replace("{out}", str(out)) for a in argv]]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()
