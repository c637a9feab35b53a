"""The GPU node pool is the same in the manifests, the kind cluster and pipelines/compute.py."""

from __future__ import annotations

import importlib

import pytest
import yaml

from manifests_support import (
    ARGO_GENERATED,
    MANIFESTS,
    NODE_POOL_CONFIGMAP,
    OVERLAYS,
    containers,
    ident,
    kind_cluster_config,
    one,
    pod_specs,
    render,
)

# ConfigMap key -> pipelines.compute constant that must hold the same value.
REQUIRED = {
    "NODE_POOL_LABEL_KEY": "NODE_POOL_LABEL_KEY",
    "NODE_POOL_LABEL_VALUE": "NODE_POOL_LABEL_VALUE",
    "GPU_TOLERATION_KEY": "GPU_TOLERATION_KEY",
    "GPU_TOLERATION_EFFECT": "GPU_TOLERATION_EFFECT",
}
# Compared when compute.py defines a constant of that name.
OPTIONAL = {"GPU_TOLERATION_OPERATOR": "GPU_TOLERATION_OPERATOR", "ACCELERATOR_TYPE": "ACCELERATOR_TYPE"}


@pytest.fixture(scope="module")
def compute():
    try:
        return importlib.import_module("pipelines.compute")
    except ModuleNotFoundError as exc:
        pytest.fail(f"pipelines/compute.py (the compute profiles the compiled pipelines use) cannot be imported: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def pool(compute) -> dict[str, str]:
    values = {key: getattr(compute, const) for key, const in REQUIRED.items()}
    values.update({key: getattr(compute, const) for key, const in OPTIONAL.items() if hasattr(compute, const)})
    return values


@pytest.mark.parametrize("rel", sorted(OVERLAYS))
def test_node_pool_configmap_matches_compute_profile(rel, pool):
    data = one(render(rel), "ConfigMap", NODE_POOL_CONFIGMAP)["data"]
    assert set(REQUIRED) <= set(data)
    mismatched = {k: (data.get(k), v) for k, v in pool.items() if data.get(k) != v}
    assert not mismatched, f"manifests/{rel} ConfigMap {NODE_POOL_CONFIGMAP} != pipelines/compute.py (manifest, compute): {mismatched}"
    assert data.get("GPU_TOLERATION_OPERATOR", "Exists") == "Exists"


def test_node_pool_values_are_written_in_one_place_only(pool):
    """Besides the ConfigMap, only the kind cluster config spells the pool label key (docs aside), and the Argo
    WorkflowTemplates rendered from pipelines/compute.py (test_manifests_argo.py keeps them equal to a fresh render)."""
    allowed = {MANIFESTS / "base" / "node-pool.yaml", MANIFESTS / "kind" / "cluster.yaml", *ARGO_GENERATED}
    spelled = sorted(
        str(p.relative_to(MANIFESTS))
        for p in MANIFESTS.rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".yml", ".json", ".env", ".py")
        and pool["NODE_POOL_LABEL_KEY"] in p.read_text() and p not in allowed
    )
    assert not spelled, f"node pool label spelled outside manifests/base/node-pool.yaml: {spelled}"


def _taints(node: dict) -> list[dict]:
    taints = []
    for patch in node.get("kubeadmConfigPatches", []):
        doc = yaml.safe_load(patch)
        if doc.get("kind") == "JoinConfiguration":
            taints += doc.get("nodeRegistration", {}).get("taints") or []
    return taints


def test_kind_cluster_has_one_gpu_pool_worker_labelled_and_tainted_like_compute(pool):
    config = kind_cluster_config()
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    workers = [n for n in config["nodes"] if n.get("role") == "worker"]
    key, value = pool["NODE_POOL_LABEL_KEY"], pool["NODE_POOL_LABEL_VALUE"]
    gpu_pool = [n for n in workers if (n.get("labels") or {}).get(key) == value]
    assert len(gpu_pool) == 1, f"expected exactly one worker labelled {key}={value}, found {len(gpu_pool)}"
    taints = _taints(gpu_pool[0])
    assert any(
        t.get("key") == pool["GPU_TOLERATION_KEY"] and t.get("effect") == pool["GPU_TOLERATION_EFFECT"] for t in taints
    ), f"the GPU-pool worker must be tainted {pool['GPU_TOLERATION_KEY']}:{pool['GPU_TOLERATION_EFFECT']}, has {taints}"
    # Operator Exists tolerates any value; a toleration with operator Equal would need the same value.
    assert all(t.get("effect") in ("NoSchedule", "PreferNoSchedule", "NoExecute") for t in taints)
    # KFP, MinIO and the submitters need somewhere untainted to run.
    general = [n for n in workers if n is not gpu_pool[0] and not _taints(n) and key not in (n.get("labels") or {})]
    assert general, "the kind cluster needs at least one untainted, unlabelled worker besides the GPU pool"


@pytest.mark.parametrize("rel", sorted(OVERLAYS))
def test_any_pod_placement_in_the_manifests_uses_the_compute_values(rel, pool):
    """No workload here needs the GPU pool; one that targets it must use exactly the pool's values."""
    key = pool["NODE_POOL_LABEL_KEY"]
    for owner, spec in pod_specs(render(rel)):
        where = "/".join(ident(owner))
        selector = spec.get("nodeSelector") or {}
        if key in selector:
            assert selector[key] == pool["NODE_POOL_LABEL_VALUE"], where
        for tol in spec.get("tolerations") or []:
            if tol.get("key") == pool["GPU_TOLERATION_KEY"]:
                assert tol.get("operator") == "Exists" and tol.get("effect") == pool["GPU_TOLERATION_EFFECT"], where
        for c in containers(spec):
            limits = (c.get("resources") or {}).get("limits") or {}
            assert not any(k.startswith("nvidia.com/") for k in limits), f"{where} asks for a GPU"
