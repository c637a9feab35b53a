"""Both DAGs with every step in its container: the project image, and a user image built FROM it.

The steps run through ``kfp.local.DockerRunner`` (Docker, or podman's Docker-compatible
API), on the host network, with the store on the suite's SeaweedFS. kfp's DockerRunner
takes a container removed before its exit code was read for a success (podman), so
success is judged from what the steps left: the model's record and the merged report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapter_base import Registry
from pipelines.kfp.local import PipelineRunError, run_local

from pipelines_support import make_digits, predict_arguments, train_arguments  # tests/pipelines, put on sys.path by conftest

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.s3]

STEP_UID = 1000


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _assert_secret_nowhere(secret: str, root: Path, *texts: str) -> None:
    for text in texts:
        assert secret not in text, "the secret key reached the output"
    for path in _files(root):
        assert secret.encode() not in path.read_bytes(), f"the secret key was written into the pipeline root: {path}"


def test_train_dag_runs_every_step_in_the_image_from_the_cli(project_image: str, s3_store_uri: str, s3_env: dict[str, str], tmp_path: Path) -> None:
    digits = make_digits(s3_store_uri)
    root = tmp_path / "kfp-root"
    a = train_arguments(s3_store_uri)
    cmd = [
        sys.executable, "-m", "adapter_base.cli.main", "pipeline", "run", "train", "--local", "--runner", "docker",
        "--image", project_image, "--pipeline-root", str(root), "--profile", "cpu", "--json",
        "--adapter", a["adapter"], "--model", a["model"], "--dataset", a["dataset"], "--store", s3_store_uri,
        "--test-filters", json.dumps(a["test_filters"]), "--metric", a["metric"], "--threshold", str(a["threshold"]), "--alias", a["alias"],
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout)["summary"]
    assert summary["status"] == "trained" and summary["version"] == 1
    assert summary["aliases"] == {"production": 1}
    assert summary["evaluation"]["accuracy"] > 0.8 and summary["evaluation"]["report"]
    with Registry.open(s3_store_uri) as registry:
        model = registry.get_model(digits.model_id)
        assert model.version == 1 and model.status == "trained"
    # The steps ran as the image's user, not root: their outputs in the bind-mounted root are uid 1000's.
    owners = {p.stat().st_uid for p in _files(root)}
    assert owners == {STEP_UID}, f"step outputs owned by {owners}"
    # Credentials reached the containers as environment only.
    _assert_secret_nowhere(s3_env["AWS_SECRET_ACCESS_KEY"], root, proc.stdout, proc.stderr, " ".join(cmd))


def test_predict_dag_in_a_user_image_from_ours(user_image: str, s3_store_uri: str, tmp_path: Path) -> None:
    digits = make_digits(s3_store_uri, corrupt=True, train=True)
    args = predict_arguments(s3_store_uri, adapter="my_adapters.adapter:MyDigitsAdapter", num_shards=3)
    result = run_local("predict", args, pipeline_root=tmp_path / "kfp-root", image=user_image, runner="docker")
    s = result.summary
    assert (s["shards"], s["total"], s["succeeded"], s["failed"]) == (3, 401, 400, 1)
    (failure,) = s["failures"]
    assert failure["item_id"] == digits.corrupt_item_id and failure["stage"] == "prepare"
    with Registry.open(s3_store_uri) as registry:
        for item in registry.iter_items(digits.dataset_id):
            expected = [] if item.id == digits.corrupt_item_id else [digits.model_id]
            assert registry.prediction_model_ids(item) == expected, f"item {item.path}: exactly one prediction set per good item"


def test_a_step_that_raises_fails_the_run_and_the_model(user_image: str, s3_store_uri: str, tmp_path: Path) -> None:
    make_digits(s3_store_uri)
    with Registry.open(s3_store_uri) as registry:
        model = registry.get_model("digits-mlp")
        model.adapter = "my_adapters.adapter:BrokenTrainingAdapter"
        registry.update_model(model)
    args = train_arguments(s3_store_uri, adapter="my_adapters.adapter:BrokenTrainingAdapter")
    with pytest.raises(PipelineRunError, match="crashed on purpose|failed"):
        run_local("train", args, pipeline_root=tmp_path / "kfp-root", image=user_image, runner="docker")
    with Registry.open(s3_store_uri) as registry:
        model = registry.get_model("digits-mlp")
        assert model.version in (0, None) and model.status == "failed"
        assert "crashed on purpose" in (model.status_message or "")


def test_a_fast_step_exit_code_is_read_before_its_container_is_removed(engine, project_image: str) -> None:
    # kfp's own runner auto-removes containers and takes one gone before its exit code was read for a 0.
    import docker

    from pipelines.engine import docker_api
    from pipelines.kfp.runners import run_container

    with docker_api(engine) as host:
        client = docker.DockerClient(base_url=host)
        try:
            codes = [run_container(client, project_image, ["python3", "-c", f"raise SystemExit({code})"], {}, labels={"t": "exit"}) for code in (3, 0, 1)]
            left = client.containers.list(all=True, filters={"label": "t=exit"})
        finally:
            client.close()
    assert codes == [3, 0, 1] and left == []
