"""kind integration suite: runs against the cluster from `make kind-up`.

Without that cluster (no kind, no cluster `model-adapter`, API server or KFP
unreachable) every test here skips with the reason; under `make kind-test`
(MODEL_ADAPTER_KIND_REQUIRED=1) the same conditions fail instead.
"""

from __future__ import annotations

import pytest

import kindutil


@pytest.fixture(scope="session", autouse=True)
def kind_cluster() -> str:
    reason = kindutil.unavailable_reason()
    if reason:
        kindutil.skip_or_fail(reason)
    return kindutil.CONTEXT


@pytest.fixture(scope="session")
def kfp_host(kind_cluster):
    """The KFP API (svc/ml-pipeline, port 8888) on a local port."""
    try:
        forward = kindutil.PortForward(kindutil.KFP_NAMESPACE, "svc/ml-pipeline", 8888).__enter__()
    except RuntimeError as exc:
        kindutil.skip_or_fail(f"Kubeflow Pipelines API not reachable: {exc}")
    try:
        if not kindutil.http_ok(forward.url + "/apis/v2beta1/healthz", timeout=120):
            kindutil.skip_or_fail(f"Kubeflow Pipelines API at {forward.url} (port-forward) is not healthy")
        yield forward.url
    finally:
        forward.__exit__(None, None, None)


@pytest.fixture(scope="session")
def kfp(kfp_host):
    return kindutil.kfp_client(kfp_host)


@pytest.fixture(scope="session")
def store(kind_cluster):
    """The store in the kind overlay's SeaweedFS (svc/seaweedfs, S3 port 8333) on a local port."""
    with kindutil.PortForward(kindutil.NAMESPACE, "svc/seaweedfs", kindutil.STORE_S3_PORT) as forward:
        # SeaweedFS's S3 gateway answers /status (no auth) once it serves S3 requests.
        assert kindutil.http_ok(forward.url + "/status", timeout=60), "the store's SeaweedFS S3 gateway is not ready"
        yield kindutil.open_store(forward.port)


@pytest.fixture(scope="session")
def settings(kind_cluster) -> dict[str, dict[str, str]]:
    """The ConfigMaps the CronJobs run with, as deployed."""
    return {
        "pipelines": kindutil.configmap("model-adapter-pipelines"),
        "node_pool": kindutil.configmap("model-adapter-node-pool"),
        "store": kindutil.configmap("model-adapter-store"),
    }
