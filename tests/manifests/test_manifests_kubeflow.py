"""The multi-user Kubeflow overlay (overlays/kubeflow), and the --namespace every CronJob passes.

Rendered with the venv's ``kubectl kustomize`` and checked offline; strict schema
validation of every object is in test_manifests_render.py (it covers every
kustomization). What is checked here: everything in one profile namespace, the
submitters authenticate with a projected token for audience pipelines.kubeflow.org
at the path ``pipelines.kfp.remote`` reads, are bound to ``kubeflow-pipelines-edit`` and
to nothing else, submit to their own namespace, and the store ConfigMap is where
the pipeline pods (``default-editor``) run.
"""

from __future__ import annotations

import posixpath

import pytest

from manifests_support import (
    CRONJOBS,
    KFP_HOST,
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
from pipelines import store_env
from pipelines.kfp import remote

OVERLAY = "overlays/kubeflow"
PROFILE_NAMESPACE = "kubeflow-user-example-com"


def pod_template(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def argv_of(objs: list[dict], cronjob: dict, namespace: str) -> list[str]:
    (container,) = pod_template(cronjob)["containers"]
    env = container_env(objs, namespace, container)
    return [expand(a, env) for a in container["command"] + container["args"]]


def test_everything_lands_in_the_profile_namespace_and_the_namespace_is_not_ours():
    objs = render(OVERLAY)
    assert not find(objs, "Namespace"), "the profile controller owns the namespace"
    for obj in objs:
        kind, namespace, name = ident(obj)
        assert namespace == PROFILE_NAMESPACE, f"{kind} {name} is in {namespace!r}"
    assert {o["kind"] for o in objs} == {"ServiceAccount", "RoleBinding", "ConfigMap", "CronJob"}


@pytest.mark.parametrize("name", CRONJOBS)
def test_cronjob_mounts_only_the_projected_kfp_token(name):
    objs = render(OVERLAY)
    pod = pod_template(one(objs, "CronJob", name, PROFILE_NAMESPACE))
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod.get("automountServiceAccountToken") is False, "the account's Kubernetes API token stays unmounted"
    volumes = {v["name"]: v for v in pod["volumes"]}
    (token_volume,) = [v for v in volumes.values() if "projected" in v]
    (source,) = token_volume["projected"]["sources"]
    assert set(source) == {"serviceAccountToken"}, "nothing but the token in the projected volume"
    sat = source["serviceAccountToken"]
    assert sat["audience"] == remote.TOKEN_AUDIENCE == "pipelines.kubeflow.org"
    assert 600 <= sat.get("expirationSeconds", 3600) <= 86400
    # the other volumes are the scratch emptyDirs of the read-only root filesystem
    assert all(set(v) == {"name", "emptyDir"} for n, v in volumes.items() if n != token_volume["name"])
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == token_volume["name"]]
    assert mount.get("readOnly") is True
    assert posixpath.join(mount["mountPath"], sat["path"]) == remote.SA_TOKEN_PATH, "where the CLI (and kfp.Client) read it"
    env = container_env(objs, PROFILE_NAMESPACE, container)
    assert remote.SA_TOKEN_ENV not in env or env[remote.SA_TOKEN_ENV] == remote.SA_TOKEN_PATH


@pytest.mark.parametrize("name", CRONJOBS)
def test_cronjob_submits_to_its_own_namespace_without_a_token_in_argv(name):
    objs = render(OVERLAY)
    cronjob = one(objs, "CronJob", name, PROFILE_NAMESPACE)
    argv = argv_of(objs, cronjob, PROFILE_NAMESPACE)
    assert argv[:4] == ["model-adapter", "pipeline", "submit", name.rsplit("-", 1)[1]]
    assert option(argv, "--namespace") == PROFILE_NAMESPACE
    assert option(argv, "--host") == KFP_HOST
    assert option(argv, "--profile") == "gpu"
    assert "--token" not in argv and not any(a.startswith("--token=") for a in argv)
    (container,) = pod_template(cronjob)["containers"]
    assert remote.TOKEN_ENV not in container_env(objs, PROFILE_NAMESPACE, container)
    from adapter_base.cli.main import build_parser

    args = build_parser().parse_args(argv[1:])
    assert args.namespace == PROFILE_NAMESPACE and args.token is None


@pytest.mark.parametrize("rel", ["base", "overlays/gpu"])
def test_standalone_cronjobs_pass_an_empty_namespace(rel):
    objs = render(rel)
    for name in CRONJOBS:
        cronjob = one(objs, "CronJob", name)
        namespace = cronjob["metadata"]["namespace"]
        assert option(argv_of(objs, cronjob, namespace), "--namespace") == "", "a standalone KFP has no profiles"
        volumes = pod_template(cronjob).get("volumes", [])
        assert not any("projected" in v or "secret" in v for v in volumes), "no KFP token on a standalone install"


def test_the_account_is_bound_to_kubeflow_pipelines_edit_and_nothing_else():
    objs = render(OVERLAY)
    assert not find(objs, "Role") and not find(objs, "ClusterRole") and not find(objs, "ClusterRoleBinding")
    (binding,) = find(objs, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": remote.EDIT_CLUSTER_ROLE}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": PROFILE_NAMESPACE}]
    assert one(objs, "ServiceAccount", SERVICE_ACCOUNT, PROFILE_NAMESPACE).get("automountServiceAccountToken") is False


def test_pipeline_pods_find_the_store_settings_in_the_profile_namespace():
    """Multi-user KFP runs pipeline pods as default-editor in the profile namespace: the store must be there."""
    objs = render(OVERLAY)
    data = one(objs, "ConfigMap", STORE_CONFIGMAP, PROFILE_NAMESPACE)["data"]
    assert set(store_env.STORE_CONFIG_KEYS) <= set(data)
    assert ".svc.cluster.local" not in data["AWS_ENDPOINT_URL"], "a real store, not the kind cluster's"
    assert not find(objs, "Secret", STORE_SECRET), "the credentials Secret is created out of band"
    for name in CRONJOBS:
        (container,) = pod_template(one(objs, "CronJob", name, PROFILE_NAMESPACE))["containers"]
        refs = {v["name"] for src in container["envFrom"] for v in src.values()}
        assert STORE_CONFIGMAP in refs and STORE_SECRET not in refs, "submitting never opens the store"


@pytest.mark.parametrize("name", CRONJOBS)
def test_the_istio_sidecar_of_a_submitter_stops_with_it(name):
    """Profile namespaces inject istio-proxy: as a native sidecar it ends with the submitter, so the Job completes."""
    template = one(render(OVERLAY), "CronJob", name, PROFILE_NAMESPACE)["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"


def test_pods_meet_the_restricted_pod_security_standard():
    for owner, spec in pod_specs(render(OVERLAY)):
        pod_ctx = spec.get("securityContext", {})
        assert pod_ctx.get("runAsNonRoot") is True and pod_ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault"
        for c in containers(spec):
            ctx = c.get("securityContext", {})
            where = f"{'/'.join(ident(owner))}/{c['name']}"
            assert ctx.get("allowPrivilegeEscalation") is False and ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert ctx.get("readOnlyRootFilesystem") is True, where


def test_the_image_is_pulled_from_a_registry_and_run_by_the_steps():
    objs = render(OVERLAY)
    for name in CRONJOBS:
        cronjob = one(objs, "CronJob", name, PROFILE_NAMESPACE)
        (container,) = pod_template(cronjob)["containers"]
        assert "/" in container["image"].split(":")[0] and not container["image"].endswith(":latest")
        assert option(argv_of(objs, cronjob, PROFILE_NAMESPACE), "--image") == container["image"]
