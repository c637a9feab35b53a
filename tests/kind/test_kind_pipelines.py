"""End to end on kind: the pipelines through KFP, the store in SeaweedFS, the GPU-pool node, the CronJobs."""

from __future__ import annotations

import math
import posixpath
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

import kindutil

pytestmark = [pytest.mark.kind, pytest.mark.timeout(3600)]

EXPERIMENT = "kind-tests"
SHARDS = 3


def layout():
    from adapter_base.registry import layout as store_layout

    return store_layout


def numbers(value) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return []


def submit_args(kind: str, kfp_host: str, settings: dict, store: kindutil.Store) -> list[str]:
    s = settings["pipelines"]
    return [
        "pipeline", "submit", kind,
        "--host", kfp_host,
        "--adapter", s["SUBMIT_ADAPTER"],
        "--model", s["SUBMIT_MODEL"],
        "--dataset", s["SUBMIT_DATASET"],
        "--store", store.uri,
        "--profile", s["SUBMIT_PROFILE"],
        "--experiment", EXPERIMENT,
        "--image", s["SUBMIT_IMAGE"],
    ]


def test_bootstrap_job_completed():
    status = kindutil.kubectl_json("-n", kindutil.NAMESPACE, "get", "job", "model-adapter-bootstrap")["status"]
    assert status.get("succeeded", 0) >= 1, f"bootstrap Job did not succeed: {status}"


def test_the_store_serves_the_bootstrapped_data_and_refuses_other_credentials(store, settings):
    """SeaweedFS took its one identity from Secret model-adapter-store-credentials (s3 config JSON)."""
    from minio import Minio
    from minio.error import S3Error

    assert store.list(layout().dataset_name(settings["pipelines"]["SUBMIT_DATASET"])), "bootstrap dataset missing"
    endpoint = store.env["AWS_ENDPOINT_URL"].removeprefix("http://")
    stranger = Minio(endpoint, access_key="not-the-store-key", secret_key="not-the-store-secret", secure=False,
                     region=store.env.get("AWS_REGION") or None)
    with pytest.raises(S3Error) as refused:
        next(iter(stranger.list_objects(store.bucket, prefix=store.prefix)))
    assert refused.value.code in ("AccessDenied", "InvalidAccessKeyId"), refused.value.code


def test_exactly_one_node_is_the_gpu_pool_and_it_is_tainted(settings):
    pool = settings["node_pool"]
    nodes = kindutil.kubectl_json("get", "nodes")["items"]
    in_pool = [n for n in nodes if n["metadata"]["labels"].get(pool["NODE_POOL_LABEL_KEY"]) == pool["NODE_POOL_LABEL_VALUE"]]
    assert len(in_pool) == 1
    taints = in_pool[0]["spec"].get("taints") or []
    assert any(t["key"] == pool["GPU_TOLERATION_KEY"] and t["effect"] == pool["GPU_TOLERATION_EFFECT"] for t in taints), taints


@pytest.fixture(scope="module")
def trained(kfp, kfp_host, settings, store):
    """Submit train -> save -> evaluate with --wait; the run must succeed."""
    kindutil.wait_quiet(kfp)  # so that the version this run creates is the next one
    model_id = store.get_json(layout().model_name(settings["pipelines"]["SUBMIT_MODEL"]))["id"]
    version_before = store.get_json(layout().model_record(model_id)).get("version", 0)
    known = kindutil.run_ids(kfp)

    kindutil.run_cli(submit_args("train", kfp_host, settings, store) + ["--wait"], env=store.env, timeout=2400)

    runs = kindutil.new_runs(kfp, known)
    assert len(runs) == 1, f"expected one new KFP run, found {[r.run_id for r in runs]}"
    run = kindutil.wait_run(kfp, runs[0].run_id, timeout=300)
    assert run.state == "SUCCEEDED", f"train run {run.run_id} ended {run.state}: {run.error}"
    return {"run_id": run.run_id, "model_id": model_id, "version_before": version_before}


def test_train_pipeline_saves_a_new_version_with_metrics_and_report(trained, store):
    lay, model_id = layout(), trained["model_id"]
    record = store.get_json(lay.model_record(model_id))
    version = record["version"]
    assert version == trained["version_before"] + 1, f"model version {trained['version_before']} -> {version}"

    manifest = store.get_json(lay.manifest(model_id, version))
    assert manifest["version"] == version and manifest["files"], "the saved version has no artifact files"
    for entry in manifest["files"]:
        store.client.stat_object(store.bucket, store._key(lay.artifact_file(model_id, version, entry["path"])))

    evaluations = posixpath.dirname(lay.evaluation_prefix(model_id, version, "stamp").rstrip("/")) + "/"
    keys = store.list(evaluations)
    metrics = [k for k in keys if k.endswith("/metrics.json")]
    reports = [k for k in keys if k.endswith("/report.html")]
    assert metrics and reports, f"no metrics.json/report.html under {evaluations}: {keys}"
    values = numbers(store.get_json(metrics[-1]))
    assert values and all(math.isfinite(v) for v in values), "metrics.json holds no finite numbers"
    report = store.get_bytes(reports[-1])
    assert len(report) > 200 and b"<html" in report[:2000].lower()


def test_predict_shards_run_on_the_gpu_pool_and_predict_every_item_once(trained, kfp, kfp_host, settings, store):
    pool, image = settings["node_pool"], settings["pipelines"]["SUBMIT_IMAGE"]
    known = kindutil.run_ids(kfp)
    started = datetime.now(timezone.utc)
    args = submit_args("predict", kfp_host, settings, store) + ["--shards", str(SHARDS), "--wait"]

    # Watch the run's pods while it runs: finished pods may be garbage-collected later.
    pods: dict[str, dict] = {}
    run_id = workflow = None
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen([kindutil.cli_path(), *args], env=store.env, stdout=out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 2400
        while True:
            finished = proc.poll() is not None
            if run_id is None:
                runs = kindutil.new_runs(kfp, known)
                run_id = runs[0].run_id if runs else None
            if run_id and workflow is None:
                workflow = kindutil.workflow_of(run_id)
            if workflow:
                pods.update({p["metadata"]["name"]: p for p in kindutil.pods_of(workflow)})
            if finished:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("model-adapter pipeline submit predict --wait did not return within 2400s")
            time.sleep(3)
        out.seek(0)
        assert proc.returncode == 0, f"predict submission exited {proc.returncode}:\n{out.read()[-4000:]}"

    assert run_id, "the predict submission created no KFP run"
    run = kindutil.wait_run(kfp, run_id, timeout=300)
    assert run.state == "SUCCEEDED", f"predict run {run_id} ended {run.state}: {run.error}"

    # Scheduling: the shard pods selected the pool and ran on the labelled, tainted node.
    key, value = pool["NODE_POOL_LABEL_KEY"], pool["NODE_POOL_LABEL_VALUE"]
    steps = [p for p in pods.values() if any(c["image"] == image for c in p["spec"]["containers"])]
    on_pool = [p for p in steps if (p["spec"].get("nodeSelector") or {}).get(key) == value]
    seen = {p["metadata"]["name"]: ((p["spec"].get("nodeSelector") or {}), p["spec"].get("nodeName")) for p in steps}
    assert len(on_pool) >= SHARDS, f"expected >= {SHARDS} step pods selecting {key}={value}; saw {seen}"
    nodes = {n["metadata"]["name"]: n for n in kindutil.kubectl_json("get", "nodes")["items"]}
    for pod in on_pool:
        name, node = pod["metadata"]["name"], pod["spec"].get("nodeName")
        assert node, f"{name} never got a node"
        assert nodes[node]["metadata"]["labels"].get(key) == value, f"{name} ran on {node}, outside the GPU pool"
        assert any(
            t.get("key") == pool["GPU_TOLERATION_KEY"] and t.get("operator") == "Exists"
            and t.get("effect") in (None, pool["GPU_TOLERATION_EFFECT"])
            for t in pod["spec"].get("tolerations") or []
        ), f"{name} does not tolerate the GPU taint"

    # The store: every item of the dataset has exactly one prediction set from this model version.
    lay, model_id = layout(), trained["model_id"]
    version = store.get_json(lay.model_record(model_id))["version"]
    dataset_id = store.get_json(lay.dataset_name(settings["pipelines"]["SUBMIT_DATASET"]))["id"]
    records = lay.item_records_prefix(dataset_id)
    items = [posixpath.basename(k)[: -len(".json")] for k in store.list(records) if k.endswith(".json")]
    assert items, f"dataset {dataset_id} has no items"
    annotations = lay.predictions_prefix(dataset_id, "ITEM").split("ITEM/")[0]
    found = {k for k in store.list(annotations) if (lay.prediction_set_of(k) or ("",))[0] == model_id}
    expected = {lay.predictions(dataset_id, item, model_id, version) for item in items}
    assert found == expected, (
        f"{len(expected - found)} items without a prediction set, {len(found - expected)} unexpected sets"
    )

    def check(item: str) -> str | None:
        pset = store.get_json(lay.predictions(dataset_id, item, model_id, version))
        created = datetime.fromisoformat(pset["created_at"].replace("Z", "+00:00"))
        if pset["item_id"] != item or pset["model_id"] != model_id:
            return f"{item}: prediction set of {pset['item_id']}/{pset['model_id']}"
        if pset["model_version"] != version:
            return f"{item}: model version {pset['model_version']}, expected {version}"
        if created < started - timedelta(minutes=2):
            return f"{item}: prediction set from {created}, before this run"
        return None

    with ThreadPoolExecutor(max_workers=8) as pool_:
        problems = [p for p in pool_.map(check, items) if p]
    assert not problems, f"{len(problems)} bad prediction sets, e.g. {problems[:5]}"


@pytest.mark.parametrize("which", ["train", "predict"])
def test_cronjob_submits_a_kfp_run(which, trained, kfp, settings):
    cronjob = f"model-adapter-{which}"
    job = f"{cronjob}-kindtest-{int(time.time())}"
    known = kindutil.run_ids(kfp)
    kindutil.kubectl("-n", kindutil.NAMESPACE, "create", "job", f"--from=cronjob/{cronjob}", job)
    outcome = kindutil.wait_job(job, timeout=600)
    logs = kindutil.kubectl("-n", kindutil.NAMESPACE, "logs", f"job/{job}", "--tail=200", check=False)
    assert outcome == "Complete", f"Job {job} from CronJob {cronjob} failed:\n{logs.stdout}{logs.stderr}"

    runs = kindutil.new_runs(kfp, known)
    assert len(runs) == 1, f"CronJob {cronjob} should create exactly one KFP run, created {[r.run_id for r in runs]}"
    experiment = kfp.get_experiment(experiment_name=settings["pipelines"]["SUBMIT_EXPERIMENT"])
    assert runs[0].experiment_id == experiment.experiment_id
    run = kindutil.wait_run(kfp, runs[0].run_id, timeout=2400)
    assert run.state == "SUCCEEDED", f"run {run.run_id} submitted by {cronjob} ended {run.state}: {run.error}"
    kindutil.kubectl("-n", kindutil.NAMESPACE, "delete", "job", job, "--ignore-not-found", check=False)
