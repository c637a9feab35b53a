"""The compiled YAML holds what the cluster relies on.

Accelerator, node selector and tolerations on the prediction executor; the store
ConfigMap and credentials Secret as env on every step (they all touch the store);
no credential value anywhere; retries with backoff on the prediction step;
caching off; the image chosen at compile time; no pip install at step start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter_base.cli.main import main
from adapter_base.errors import ValidationError
from pipelines import compute
from pipelines.kfp.build import compile_pipeline
from pipelines.store_env import STORE_CONFIG_KEYS, STORE_CONFIG_MAP, STORE_SECRET, STORE_SECRET_KEYS

FAKE_KEY_ID = "ZZFAKEKEYID0123456789"
FAKE_SECRET = "ZZ-FAKE-SECRET-3f9a1c77e2b04d5e9b1f-do-not-leak"
FAKE_ENDPOINT = "http://zz-fake-endpoint.invalid:9000"
IMAGE = "registry.example.com/team/my-adapters:1.2.3"

ALL_STEPS = {
    "train": {"load", "train", "commit", "evaluate", "promote", "finalize"},
    "predict": {"load", "split-dataset", "predict-shard", "merge-reports"},
}
HEAVY = {"train": {"train", "evaluate"}, "predict": {"predict-shard"}}


class Compiled:
    """A compiled pipeline: its text, pipeline spec, platform spec, and tasks by component name."""

    def __init__(self, path: Path) -> None:
        self.text = path.read_text()
        docs = [d for d in yaml.safe_load_all(self.text) if d]
        self.spec = docs[0]
        self.platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(docs) > 1 else {}
        self.tasks: dict[str, dict[str, Any]] = {}
        dags = [self.spec["root"]["dag"]] + [c["dag"] for c in self.spec["components"].values() if "dag" in c]
        for dag in dags:
            for task in dag.get("tasks", {}).values():
                comp = self.spec["components"][task["componentRef"]["name"]]
                if "executorLabel" in comp:
                    self.tasks[comp["executorLabel"][len("exec-"):]] = task
        self.executors = self.spec["deploymentSpec"]["executors"]

    def container(self, step: str) -> dict[str, Any]:
        return self.executors[f"exec-{step}"]["container"]

    def k8s(self, step: str) -> dict[str, Any]:
        return self.platform.get(f"exec-{step}", {})


@pytest.fixture
def fake_credentials(monkeypatch):
    """Distinctive credential values in the environment while compiling: none may end up in the YAML."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_ENDPOINT_URL", FAKE_ENDPOINT)
    monkeypatch.setenv("MODEL_ADAPTER_STORE", "s3://zz-fake-bucket/store")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[tuple[str, str], Compiled]:
    out = {}
    root = tmp_path_factory.mktemp("compiled")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
        mp.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
        mp.setenv("AWS_ENDPOINT_URL", FAKE_ENDPOINT)
        for kind in ("train", "predict"):
            for profile in compute.PROFILES:
                path = compile_pipeline(kind, root / f"{kind}-{profile}.yaml", IMAGE, profile)
                out[(kind, profile)] = Compiled(path)
    return out


@pytest.mark.parametrize("kind", ["train", "predict"])
def test_every_step_is_there_and_runs_the_chosen_image_without_installing_anything(compiled, kind):
    c = compiled[(kind, "gpu")]
    assert set(c.tasks) == ALL_STEPS[kind]
    for step in ALL_STEPS[kind]:
        container = c.container(step)
        assert container["image"] == IMAGE
        command = " ".join(container["command"])
        assert "pip install" not in command, f"{step} installs packages at start: the image must already have them"
        assert "import adapter_base" in command or "from adapter_base" in command, f"{step} does not call into adapter_base"


def test_the_prediction_executor_asks_for_a_gpu_on_the_gpu_pool(compiled):
    c = compiled[("predict", "gpu")]
    res = c.container("predict-shard")["resources"]
    acc = res["accelerator"]
    assert (acc.get("resourceType") or acc.get("type")) == compute.ACCELERATOR_TYPE
    assert int(acc.get("resourceCount") or acc.get("count")) == 1
    gpu = compute.PROFILES["gpu"]
    assert res["resourceCpuRequest"] == gpu.cpu_request and res["resourceMemoryRequest"] == gpu.memory_request
    assert res["resourceCpuLimit"] == gpu.cpu_limit and res["resourceMemoryLimit"] == gpu.memory_limit
    k8s = c.k8s("predict-shard")
    assert k8s["nodeSelector"]["labels"] == {compute.NODE_POOL_LABEL_KEY: compute.NODE_POOL_LABEL_VALUE}
    assert k8s["tolerations"] == [
        {"key": compute.GPU_TOLERATION_KEY, "operator": compute.GPU_TOLERATION_OPERATOR, "effect": compute.GPU_TOLERATION_EFFECT}
    ]
    (scratch,) = k8s["emptyDirMounts"]
    assert scratch["sizeLimit"] == gpu.ephemeral_storage and scratch["mountPath"] == compute.SCRATCH_MOUNT_PATH


def test_only_the_heavy_steps_get_the_profile(compiled):
    for kind in ("train", "predict"):
        c = compiled[(kind, "gpu")]
        for step in ALL_STEPS[kind]:
            heavy = step in HEAVY[kind]
            assert ("accelerator" in c.container(step).get("resources", {})) == heavy, (kind, step)
            assert ("nodeSelector" in c.k8s(step)) == heavy, (kind, step)
            assert ("tolerations" in c.k8s(step)) == heavy, (kind, step)


def test_gpu_pool_profile_places_without_an_accelerator_and_cpu_profile_does_neither(compiled):
    pool = compiled[("predict", "gpu-pool")]
    assert "accelerator" not in pool.container("predict-shard").get("resources", {})
    assert pool.k8s("predict-shard")["nodeSelector"]["labels"] == {compute.NODE_POOL_LABEL_KEY: compute.NODE_POOL_LABEL_VALUE}
    assert pool.k8s("predict-shard")["tolerations"][0]["key"] == compute.GPU_TOLERATION_KEY
    for kind in ("train", "predict"):
        cpu = compiled[(kind, "cpu")]
        for step in ALL_STEPS[kind]:
            assert "accelerator" not in cpu.container(step).get("resources", {})
            assert "nodeSelector" not in cpu.k8s(step) and "tolerations" not in cpu.k8s(step)


@pytest.mark.parametrize("kind", ["train", "predict"])
@pytest.mark.parametrize("profile", list(compute.PROFILES))
def test_every_step_takes_the_store_configmap_and_secret_as_env(compiled, kind, profile):
    c = compiled[(kind, profile)]
    for step in ALL_STEPS[kind]:
        k8s = c.k8s(step)
        (secret,) = k8s["secretAsEnv"]
        assert secret["secretName"] == STORE_SECRET
        assert {(m["secretKey"], m["envVar"]) for m in secret["keyToEnv"]} == {(k, k) for k in STORE_SECRET_KEYS}
        (cm,) = k8s["configMapAsEnv"]
        assert cm["configMapName"] == STORE_CONFIG_MAP
        assert {(m["configMapKey"], m["envVar"]) for m in cm["keyToEnv"]} == {(k, k) for k in STORE_CONFIG_KEYS}


@pytest.mark.parametrize("kind", ["train", "predict"])
@pytest.mark.parametrize("profile", list(compute.PROFILES))
def test_no_credential_value_anywhere_in_the_file(compiled, kind, profile):
    text = compiled[(kind, profile)].text
    for value in (FAKE_KEY_ID, FAKE_SECRET, "ZZ-FAKE", "zz-fake-endpoint"):
        assert value not in text
    params = compiled[(kind, profile)].spec["root"]["inputDefinitions"]["parameters"]
    assert not [p for p in params if re.search(r"secret|password|access_key|token|credential", p, re.I)]
    assert params["store_uri"]["defaultValue"] == "", "the store defaults to $MODEL_ADAPTER_STORE where the step runs"


def test_the_prediction_step_retries_with_backoff(compiled):
    policy = compiled[("predict", "gpu")].tasks["predict-shard"]["retryPolicy"]
    assert policy["maxRetryCount"] == 3
    assert policy["backoffDuration"] == "30s" and float(policy["backoffFactor"]) == 2.0 and policy["backoffMaxDuration"]


@pytest.mark.parametrize("kind", ["train", "predict"])
def test_caching_is_off_on_every_step_since_they_all_touch_the_store(compiled, kind):
    c = compiled[(kind, "gpu")]
    for step, task in c.tasks.items():
        assert "cachingOptions" in task and not task["cachingOptions"].get("enableCache"), f"{step} may be cached"


def test_prediction_fans_out_over_shards_with_a_parallelism_cap(tmp_path):
    c = Compiled(compile_pipeline("predict", tmp_path / "p.yaml", IMAGE, "gpu", parallelism=5, retries=1, backoff="10s"))
    loops = [comp for comp in c.spec["root"]["dag"]["tasks"].values() if "parameterIterator" in comp]
    (loop,) = loops
    assert loop["iteratorPolicy"]["parallelismLimit"] == 5
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("split-dataset-Output")
    assert c.tasks["predict-shard"]["retryPolicy"]["maxRetryCount"] == 1
    merge_inputs = c.tasks["merge-reports"]["inputs"]["artifacts"]["reports"]
    assert "taskOutputArtifact" in merge_inputs and "for-loop" in merge_inputs["taskOutputArtifact"]["producerTask"]


def test_train_gates_promotion_on_the_threshold_and_records_status_at_exit(compiled):
    c = compiled[("train", "gpu")]
    text = c.text
    assert re.search(r"condition: inputs\.parameter_values\['pipelinechannel--evaluate-Output'\]\s+== true", text)
    evaluate_outputs = c.spec["components"]["comp-evaluate"]["outputDefinitions"]["parameters"]
    assert {k: v["parameterType"] for k, v in evaluate_outputs.items()} == {"Output": "BOOLEAN"}, (
        "the gate travels as a bool: a float metric output could be a bare NaN, which the Go launcher rejects"
    )
    root_tasks = c.spec["root"]["dag"]["tasks"]
    assert root_tasks["finalize"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert "status" in c.spec["components"]["comp-finalize"]["inputDefinitions"]["parameters"]
    assert c.spec["components"]["comp-finalize"]["inputDefinitions"]["parameters"]["status"]["parameterType"] == "TASK_FINAL_STATUS"
    assert c.tasks["train"]["retryPolicy"]["maxRetryCount"] >= 1
    outputs = c.spec["components"]["comp-evaluate"]["outputDefinitions"]["artifacts"]
    assert {k: v["artifactType"]["schemaTitle"] for k, v in outputs.items()} == {
        "metrics": "system.Metrics",
        "confusion_matrix": "system.ClassificationMetrics",
        "report": "system.HTML",
        "summary": "system.Markdown",
    }
    for comp in ("comp-load", "comp-commit"):
        arts = c.spec["components"][comp]["outputDefinitions"]["artifacts"]
        assert all(a["artifactType"]["schemaTitle"] == "system.Model" for a in arts.values())


@pytest.mark.parametrize("kind", ["train", "predict"])
def test_no_step_outputs_a_float_parameter(compiled, kind):
    """The executor writes a float return value with json.dumps: NaN would reach the Go launcher as a bare NaN."""
    for name, comp in compiled[(kind, "gpu")].spec["components"].items():
        params = comp.get("outputDefinitions", {}).get("parameters", {})
        assert not [p for p, d in params.items() if d["parameterType"] == "NUMBER_DOUBLE"], name


def test_cli_compile_writes_the_yaml_with_the_image_from_the_environment(tmp_path, monkeypatch, capsys, fake_credentials):
    monkeypatch.setenv("MODEL_ADAPTER_IMAGE", "example.org/env-image:7")
    out = tmp_path / "sub" / "predict.yaml"
    assert main(["pipeline", "compile", "predict", "-o", str(out), "--profile", "gpu-pool", "--parallelism", "2"]) == 0
    c = Compiled(out)
    assert c.container("predict-shard")["image"] == "example.org/env-image:7"
    assert FAKE_SECRET not in c.text and "zz-fake-bucket" not in c.text
    assert "compiled the predict pipeline" in capsys.readouterr().out
    assert main(["pipeline", "compile", "train", "-o", str(tmp_path / "t.yaml"), "--image", IMAGE]) == 0
    assert Compiled(tmp_path / "t.yaml").container("train")["image"] == IMAGE


def test_cli_rejects_an_unknown_profile(tmp_path, capsys):
    assert main(["pipeline", "compile", "train", "-o", str(tmp_path / "t.yaml"), "--profile", "tpu"]) == 1
    assert "unknown compute profile 'tpu'" in capsys.readouterr().err


def test_profiles_follow_the_fixed_conventions():
    gpu, pool, cpu = (compute.get_profile(n) for n in ("gpu", "gpu-pool", "cpu"))
    assert (gpu.accelerator_type, gpu.accelerator_count) == (compute.ACCELERATOR_TYPE, 1)
    assert gpu.node_selector == pool.node_selector == {"model-adapter.dev/pool": "gpu"}
    assert gpu.tolerations == pool.tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert not pool.uses_accelerator and not cpu.uses_accelerator and not cpu.node_selector and not cpu.tolerations
    with pytest.raises(ValueError, match="unknown compute profile 'x'; known profiles: gpu, gpu-pool, cpu"):
        compute.get_profile("x")
    with pytest.raises(Exception):
        gpu.name = "other"  # frozen


BAD_IMAGES = {
    "registry.example.com/team/img:1\nrm -rf /": "'\\n'",
    'registry.example.com/team/img:"1"': "'\"'",
    "registry.example.com/Team/img:1": "repository part 'Team'",
    "MyImage:1": "repository part 'MyImage'",
    "registry.example.com/team/img:1 ": "' '",
    "registry.example.com/team/img:-1": "tag '-1'",
    "registry.example.com/team/img@sha256:abc": "digest 'sha256:abc'",
    "registry.example.com:port/team/img": "registry host 'registry.example.com:port'",
    "registry.example.com/team//img": "repository part ''",
}
GOOD_IMAGES = [
    "model-adapter:dev",
    "localhost:5000/model-adapter:dev",
    "Registry.Example.com:443/team/sub_dir/my__img-x:1.2.3_rc-1",
    "ghcr.io/team/img@sha256:" + "a" * 64,
    "ghcr.io/team/img:1@sha256:" + "0123456789abcdef" * 4,
    "[::1]:5000/img",
]


@pytest.mark.parametrize("bad", list(BAD_IMAGES))
@pytest.mark.parametrize("action", ["compile", "submit", "schedule", "run"])
def test_a_malformed_image_reference_is_refused_before_anything_is_written(tmp_path, capsys, bad, action):
    """One error naming --image, the value and what is wrong: never a YAML holding it (nor a call to a server)."""
    out = tmp_path / "t.yaml"
    argv = {
        "compile": ["pipeline", "compile", "train", "-o", str(out)],
        "submit": ["pipeline", "submit", "train", "--host", "http://127.0.0.1:9", "--adapter", "a.b:C", "--model", "m"],
        "schedule": ["pipeline", "schedule", "train", "--cron", "0 3 * * *", "--name", "n", "--host", "http://127.0.0.1:9", "--adapter", "a.b:C", "--model", "m"],
        "run": ["pipeline", "run", "train", "--local", "--adapter", "a.b:C", "--model", "m", "--store", str(tmp_path / "store")],
    }[action]
    assert main([*argv, "--image", bad]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"pipeline.--image: {bad!r} is not an image reference" in err, err
    assert BAD_IMAGES[bad] in err, err
    assert not out.exists()


def test_a_malformed_image_in_the_environment_is_refused_by_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MODEL_ADAPTER_IMAGE", "Example/Img")
    assert main(["pipeline", "compile", "train", "-o", str(tmp_path / "t.yaml")]) == 1
    assert "pipeline.$MODEL_ADAPTER_IMAGE: 'Example/Img' is not an image reference" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="pipeline.image: 'a b' is not an image reference"):
        compile_pipeline("train", tmp_path / "t.yaml", image="a b")


@pytest.mark.parametrize("good", GOOD_IMAGES)
def test_valid_image_references_compile(tmp_path, good):
    path = compile_pipeline("train", tmp_path / "t.yaml", image=good, profile="cpu")
    assert Compiled(path).container("train")["image"] == good


@pytest.mark.parametrize("kind", ["train", "predict"])
@pytest.mark.parametrize("profile", list(compute.PROFILES))
def test_every_step_requests_and_limits_cpu_and_memory(tmp_path, kind, profile):
    """A namespace with a ResourceQuota and no LimitRange refuses a pod without requests and limits: every step has them."""
    c = Compiled(compile_pipeline(kind, tmp_path / "p.yaml", IMAGE, profile))
    for name, executor in c.executors.items():
        res = executor["container"].get("resources") or {}
        assert {"resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit"} <= set(res), (name, res)
        assert res["cpuRequest"] <= res["cpuLimit"] and res["memoryRequest"] <= res["memoryLimit"], name
