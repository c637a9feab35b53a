"""Helpers of the kind integration suite: kubectl on the kind cluster, port-forwards, the store, KFP runs.

Everything talks to the cluster through the kubectl context ``kind-$KIND_CLUSTER``
(default ``kind-model-adapter``, the cluster `make kind-up` creates), never the
current context.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapter_base.processes import stop_process

CLUSTER = os.environ.get("KIND_CLUSTER", "model-adapter")
CONTEXT = f"kind-{CLUSTER}"
NAMESPACE = "model-adapter"
KFP_NAMESPACE = "kubeflow"
# The S3 port of the store (Service seaweedfs of the kind overlay).
STORE_S3_PORT = 8333
# Set by `make kind-test`: a missing cluster or KFP is then a failure, not a skip.
REQUIRED = os.environ.get("MODEL_ADAPTER_KIND_REQUIRED") == "1"
BIN = Path(sys.executable).parent
TERMINAL_STATES = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"}


def skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (MODEL_ADAPTER_KIND_REQUIRED=1)", pytrace=False)
    pytest.skip(reason)


def kubectl_path() -> str | None:
    venv = BIN / "kubectl"
    return str(venv) if venv.exists() else shutil.which("kubectl")


def cli_path() -> str:
    venv = BIN / "model-adapter"
    found = str(venv) if venv.exists() else shutil.which("model-adapter")
    if not found:
        pytest.fail("the model-adapter CLI is not installed in this environment (`make venv`)", pytrace=False)
    return found


def unavailable_reason() -> str | None:
    """Why the kind cluster cannot be used, or None when it can."""
    kind = shutil.which("kind")
    if not kind:
        return "kind is not installed: these tests need the cluster from `make kind-up` (Docker + kind)"
    try:
        clusters = subprocess.run([kind, "get", "clusters"], capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`kind get clusters` failed: {exc}"
    if CLUSTER not in clusters:
        return f"no kind cluster {CLUSTER!r} (found {clusters or 'none'}): run `make kind-up`"
    kubectl = kubectl_path()
    if not kubectl:
        return "kubectl is not installed"
    try:
        proc = subprocess.run([kubectl, "--context", CONTEXT, "get", "--raw", "/readyz"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return f"the API server of kind cluster {CLUSTER!r} did not answer within 30s"
    if proc.returncode != 0:
        return f"kind cluster {CLUSTER!r} is not reachable through context {CONTEXT}: {proc.stderr.strip()}"
    return None


def kubectl(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [kubectl_path() or "kubectl", "--context", CONTEXT, *args], capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def kubectl_json(*args: str, timeout: float = 120) -> Any:
    return json.loads(kubectl(*args, "-o", "json", timeout=timeout).stdout)


def configmap(name: str, namespace: str = NAMESPACE) -> dict[str, str]:
    return kubectl_json("-n", namespace, "get", "configmap", name).get("data", {})


def secret(name: str, namespace: str = NAMESPACE) -> dict[str, str]:
    data = kubectl_json("-n", namespace, "get", "secret", name).get("data", {})
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


class PortForward:
    """`kubectl port-forward` to a random local port, for the life of the context."""

    def __init__(self, namespace: str, target: str, remote_port: int):
        self.namespace, self.target, self.remote_port = namespace, target, remote_port
        self.port = 0
        self._stderr = tempfile.TemporaryFile(mode="w+")

    def __enter__(self) -> "PortForward":
        self.proc = subprocess.Popen(
            [kubectl_path() or "kubectl", "--context", CONTEXT, "-n", self.namespace, "port-forward",
             "--address", "127.0.0.1", self.target, f":{self.remote_port}"],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )
        deadline = time.monotonic() + 30
        while not self.port:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = self.proc.stdout.readline() if ready else ""
            match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
            elif not ready or (not line and self.proc.poll() is not None):
                self.close()
                self._stderr.seek(0)
                raise RuntimeError(f"port-forward to {self.namespace}/{self.target}:{self.remote_port} failed: {self._stderr.read().strip()}")
        # kubectl logs every connection on stdout: keep the pipe drained.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        return self

    def close(self) -> None:
        stop_process(self.proc)

    def __exit__(self, *exc: object) -> None:
        self.close()
        self._stderr.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def http_ok(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(2)
    return False


@dataclass
class Store:
    """The model-adapter store in the in-cluster SeaweedFS, reached through a port-forward."""

    client: Any
    bucket: str
    prefix: str
    uri: str
    env: dict[str, str] = field(repr=False)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get_bytes(self, key: str) -> bytes:
        response = self.client.get_object(self.bucket, self._key(key))
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def list(self, prefix: str) -> list[str]:
        """Keys (relative to the store) under ``prefix``, recursively."""
        strip = len(self._key(""))
        return sorted(o.object_name[strip:] for o in self.client.list_objects(self.bucket, self._key(prefix), recursive=True))


def open_store(port: int) -> Store:
    from minio import Minio

    settings = configmap("model-adapter-store")
    credentials = secret("model-adapter-store-credentials")
    uri = settings["MODEL_ADAPTER_STORE"]
    parsed = urllib.parse.urlparse(uri)
    client = Minio(
        f"127.0.0.1:{port}",
        access_key=credentials["AWS_ACCESS_KEY_ID"],
        secret_key=credentials["AWS_SECRET_ACCESS_KEY"],
        secure=False,
        region=settings.get("AWS_REGION") or None,
    )
    env = dict(os.environ)
    env.update(settings)
    env.update(credentials)
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    return Store(client=client, bucket=parsed.netloc, prefix=parsed.path.strip("/"), uri=uri, env=env)


def kfp_client(host: str):
    import kfp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kfp.Client(host=host)


def recent_runs(client, count: int = 100) -> list:
    response = client.list_runs(page_size=count, sort_by="created_at desc")
    return list(response.runs or [])


def run_ids(client) -> set[str]:
    return {r.run_id for r in recent_runs(client)}


def new_runs(client, known: set[str]) -> list:
    return [r for r in recent_runs(client) if r.run_id not in known]


def wait_run(client, run_id: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get_run(run_id)
        if run.state in TERMINAL_STATES:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"KFP run {run_id} still {run.state} after {timeout:.0f}s")
        time.sleep(10)


def wait_quiet(client, timeout: float = 1800) -> None:
    """Wait until no recent run is still going (left over from an earlier session)."""
    deadline = time.monotonic() + timeout
    while any(r.state not in TERMINAL_STATES for r in recent_runs(client)):
        if time.monotonic() > deadline:
            raise AssertionError(f"KFP runs still active after {timeout:.0f}s")
        time.sleep(10)


def workflow_of(run_id: str) -> str | None:
    items = kubectl_json("-n", KFP_NAMESPACE, "get", "workflows.argoproj.io", "-l", f"pipeline/runid={run_id}")["items"]
    return items[0]["metadata"]["name"] if items else None


def pods_of(workflow: str) -> list[dict]:
    return kubectl_json("-n", KFP_NAMESPACE, "get", "pods", "-l", f"workflows.argoproj.io/workflow={workflow}")["items"]


def wait_job(name: str, timeout: float, namespace: str = NAMESPACE) -> str:
    """'Complete' or 'Failed', whichever condition the Job reaches first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = kubectl_json("-n", namespace, "get", "job", name).get("status", {}).get("conditions") or []
        for cond in conditions:
            if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
                return cond["type"]
        time.sleep(5)
    raise AssertionError(f"Job {namespace}/{name} neither completed nor failed within {timeout:.0f}s")


def run_cli(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run([cli_path(), *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"model-adapter {' '.join(args)} exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )
    return proc
