"""CronJobs, the service account, pod security, and what each overlay adds."""

from __future__ import annotations

import re

import pytest

from manifests_support import (
    CRONJOBS,
    KFP_HOST,
    KFP_NAMESPACE,
    OUR_NAMESPACE,
    OVERLAYS,
    PIPELINES_CONFIGMAP,
    SERVICE_ACCOUNT,
    STORE_CONFIGMAP,
    STORE_SECRET,
    container_env,
    containers,
    expand,
    find,
    ident,
    one,
    option,
    pod_specs,
    render,
)

CASES = [(rel, name) for rel in sorted(OVERLAYS) for name in CRONJOBS]
KIND_IMAGE = "model-adapter:dev"


def quantity(value: str | int) -> float:
    """A Kubernetes CPU or memory quantity as a number (cores / bytes)."""
    units = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    assert match and match.group(2) in units, f"unparseable quantity {value!r}"
    return float(match.group(1)) * units[match.group(2)]


def pod_template(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def submit_container(cronjob: dict) -> dict:
    (container,) = pod_template(cronjob)["containers"]
    return container


@pytest.mark.parametrize("rel,name", CASES)
def test_cronjob_schedule_policy(rel, name):
    spec = one(render(rel), "CronJob", name)["spec"]
    assert len(spec["schedule"].split()) == 5, spec["schedule"]
    assert spec.get("timeZone")
    assert spec.get("concurrencyPolicy") == "Forbid"
    assert isinstance(spec.get("startingDeadlineSeconds"), int) and 0 < spec["startingDeadlineSeconds"] <= 3600
    for limit in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        assert isinstance(spec.get(limit), int) and 1 <= spec[limit] <= 10, f"{limit}={spec.get(limit)}"
    # On kind only the tests trigger them; elsewhere they run on their schedule.
    assert spec.get("suspend", False) is (rel == "overlays/kind")
    job = spec["jobTemplate"]["spec"]
    assert isinstance(job.get("activeDeadlineSeconds"), int) and job["activeDeadlineSeconds"] > 0
    assert isinstance(job.get("backoffLimit"), int) and job["backoffLimit"] <= 3
    assert pod_template(one(render(rel), "CronJob", name))["restartPolicy"] in ("Never", "OnFailure")


@pytest.mark.parametrize("rel,name", CASES)
def test_cronjob_runs_as_the_service_account_without_its_token(rel, name):
    objs = render(rel)
    pod = pod_template(one(objs, "CronJob", name))
    assert pod.get("serviceAccountName") == SERVICE_ACCOUNT
    account = one(objs, "ServiceAccount", SERVICE_ACCOUNT)
    assert pod.get("automountServiceAccountToken", account.get("automountServiceAccountToken")) is False


@pytest.mark.parametrize("rel,name", CASES)
def test_cronjob_container_has_requests_and_limits(rel, name):
    resources = submit_container(one(render(rel), "CronJob", name)).get("resources", {})
    for resource in ("cpu", "memory"):
        request = resources.get("requests", {}).get(resource)
        limit = resources.get("limits", {}).get(resource)
        assert request is not None and limit is not None, f"{resource} request/limit missing"
        assert 0 < quantity(request) <= quantity(limit)


@pytest.mark.parametrize("rel,name", CASES)
def test_cronjob_takes_store_settings_but_no_credentials(rel, name):
    """Submitting never opens the store: the submitter pod gets where it is, never the S3 keys."""
    objs = render(rel)
    container = submit_container(one(objs, "CronJob", name))
    refs = {(k, v["name"]) for src in container.get("envFrom", []) for k, v in src.items() if k.endswith("Ref")}
    assert ("configMapRef", STORE_CONFIGMAP) in refs
    assert ("secretRef", STORE_SECRET) not in refs
    assert not [e for e in container.get("env", []) if "secretKeyRef" in (e.get("valueFrom") or {})]
    assert ("configMapRef", PIPELINES_CONFIGMAP) in refs
    for ref_kind, ref_name in refs:
        kind = "ConfigMap" if ref_kind == "configMapRef" else "Secret"
        if kind == "Secret" and OVERLAYS[rel]["secret"] is None:
            continue  # created out of band on real clusters
        assert find(objs, kind, ref_name, OUR_NAMESPACE), f"{kind} {ref_name} is not rendered in {OUR_NAMESPACE}"


@pytest.mark.parametrize("rel,name", CASES)
def test_cronjob_image_and_pull_policy_fit_the_overlay(rel, name):
    container = submit_container(one(render(rel), "CronJob", name))
    assert container.get("imagePullPolicy") == OVERLAYS[rel]["pull"]
    image = container["image"]
    if rel == "overlays/gpu":
        assert image != KIND_IMAGE and "/" in image.split(":")[0], f"real clusters pull {image!r} from a registry"
    else:
        assert image == KIND_IMAGE
    assert not image.endswith(":latest") and (":" in image or "@" in image)


@pytest.mark.parametrize("rel,name", CASES)
def test_cronjob_submits_its_pipeline_with_the_cli(rel, name):
    objs = render(rel)
    container = submit_container(one(objs, "CronJob", name))
    env = container_env(objs, OUR_NAMESPACE, container)
    argv = [expand(a, env) for a in container.get("command", []) + container.get("args", [])]
    which = name.rsplit("-", 1)[1]
    assert argv[:4] == ["model-adapter", "pipeline", "submit", which], argv
    assert option(argv, "--host") == KFP_HOST
    assert option(argv, "--profile") == OVERLAYS[rel]["profile"]
    assert option(argv, "--store") == one(objs, "ConfigMap", STORE_CONFIGMAP)["data"]["MODEL_ADAPTER_STORE"]
    assert option(argv, "--image") == container["image"], "pipeline steps must run the CronJob's own image"
    for required in ("--adapter", "--model", "--dataset", "--experiment"):
        assert option(argv, required)
    assert re.fullmatch(r"[\w.]+:\w+", option(argv, "--adapter"))
    if which == "predict":
        assert int(option(argv, "--shards")) >= 2
    else:
        assert "--shards" not in argv
    assert "--wait" not in argv, "the submitter must not block on the run"


def test_both_cronjobs_submit_for_the_same_model_and_dataset():
    objs = render("overlays/kind")
    seen = set()
    for name in CRONJOBS:
        container = submit_container(one(objs, "CronJob", name))
        env = container_env(objs, OUR_NAMESPACE, container)
        argv = [expand(a, env) for a in container["args"]]
        seen.add((option(argv, "--adapter"), option(argv, "--model"), option(argv, "--dataset")))
    assert len(seen) == 1


@pytest.mark.parametrize("rel", sorted(OVERLAYS))
def test_service_account_has_no_kubernetes_api_rights(rel):
    """Submitting talks to the KFP API and S3 only: no cluster-wide RBAC, no token, no write access."""
    objs = render(rel)
    assert not find(objs, "ClusterRole") and not find(objs, "ClusterRoleBinding")
    assert one(objs, "ServiceAccount", SERVICE_ACCOUNT).get("automountServiceAccountToken") is False
    for role in find(objs, "Role"):
        for rule in role.get("rules", []):
            assert "*" not in rule.get("verbs", []) + rule.get("resources", []) + rule.get("apiGroups", [])
            if "secrets" in rule.get("resources", []):
                assert set(rule["verbs"]) <= {"get"} and rule.get("resourceNames")
    for binding in find(objs, "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"


@pytest.mark.parametrize("rel", sorted(OVERLAYS))
def test_pods_meet_the_restricted_pod_security_standard(rel):
    objs = render(rel)
    labels = one(objs, "Namespace", OUR_NAMESPACE, namespace="")["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    for owner, spec in pod_specs(objs):
        where = "/".join(ident(owner))
        pod_ctx = spec.get("securityContext", {})
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
        assert not any("hostPath" in v for v in spec.get("volumes", [])), where
        for c in containers(spec):
            ctx = c.get("securityContext", {})
            assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, f"{where}/{c['name']}"
            assert ctx.get("runAsUser", pod_ctx.get("runAsUser", 1)) != 0, f"{where}/{c['name']}"
            seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {})).get("type")
            assert seccomp in ("RuntimeDefault", "Localhost"), f"{where}/{c['name']}"
            assert ctx.get("allowPrivilegeEscalation") is False, f"{where}/{c['name']}"
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], f"{where}/{c['name']}"
            assert not ctx.get("privileged"), f"{where}/{c['name']}"


@pytest.mark.parametrize("rel", [r for r in sorted(OVERLAYS) if OVERLAYS[r]["run_env"]])
def test_store_settings_are_copied_to_the_namespace_kfp_runs_pods_in(rel):
    objs = render(rel)
    ours = one(objs, "ConfigMap", STORE_CONFIGMAP, OUR_NAMESPACE)
    theirs = one(objs, "ConfigMap", STORE_CONFIGMAP, KFP_NAMESPACE)
    assert ours["data"] == theirs["data"]
    ours_s, theirs_s = find(objs, "Secret", STORE_SECRET, OUR_NAMESPACE), find(objs, "Secret", STORE_SECRET, KFP_NAMESPACE)
    assert [s.get("data") for s in ours_s] == [s.get("data") for s in theirs_s]


def test_kind_overlay_bootstraps_bucket_dataset_and_model():
    objs = render("overlays/kind")
    job = one(objs, "Job", "model-adapter-bootstrap")
    spec = job["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == SERVICE_ACCOUNT and spec["restartPolicy"] == "Never"
    assert job["spec"].get("activeDeadlineSeconds") and job["spec"].get("backoffLimit") is not None
    (container,) = spec["containers"]
    assert container["image"] == KIND_IMAGE and container["imagePullPolicy"] == "Never"
    env = container_env(objs, OUR_NAMESPACE, container)
    for name in ("MODEL_ADAPTER_STORE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "SUBMIT_DATASET", "SUBMIT_MODEL", "SUBMIT_ADAPTER"):
        assert name in env, f"bootstrap container lacks {name}"
    (volume,) = [v for v in spec["volumes"] if "configMap" in v]
    (script_cm,) = find(objs, "ConfigMap", volume["configMap"]["name"], OUR_NAMESPACE)
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    (filename, source) = next(iter(script_cm["data"].items()))
    assert container["command"][-1] == f"{mount['mountPath']}/{filename}"
    compile(source, filename, "exec")
    for needle in ('"dataset", "import", "digits"', '"model", "create"', "make_bucket", "SUBMIT_DATASET", "SUBMIT_MODEL"):
        assert needle in source


def test_kind_overlay_never_pulls_the_project_image():
    for owner, spec in pod_specs(render("overlays/kind")):
        for c in containers(spec):
            if c["image"].split(":")[0] == "model-adapter":
                assert c["imagePullPolicy"] == "Never", f"{'/'.join(ident(owner))}/{c['name']}"


def test_gpu_overlay_points_at_a_real_store_not_the_kind_store():
    store = one(render("overlays/gpu"), "ConfigMap", STORE_CONFIGMAP)["data"]
    assert ".svc.cluster.local" not in store["AWS_ENDPOINT_URL"]
    assert not find(render("overlays/gpu"), "Deployment") and not find(render("overlays/gpu"), "Job")
