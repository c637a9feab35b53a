"""The two ways ``kfp.local`` runs a step: in this Python environment, or in the project image.

``subprocess`` (the default): ``SubprocessRunner(use_venv=False)``, each step a
subprocess of this interpreter. ``docker``: ``DockerRunner``, each step in its own
container of the image through Docker or podman (``pipelines.engine``), on the host
network so a store on ``127.0.0.1`` is reachable, with the store settings and
credentials passed as environment variables only: never in the command line, the
logs or the pipeline root.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlparse

from adapter_base.errors import ValidationError

from ..engine import Engine, docker_api, find_engine
from ..store_env import STORE_CONFIG_KEYS, STORE_SECRET_KEYS

RUNNERS: tuple[str, ...] = ("subprocess", "docker")
#: Variables a containerized step gets from the caller's environment, where set.
CONTAINER_ENV_KEYS: tuple[str, ...] = (*STORE_CONFIG_KEYS, *STORE_SECRET_KEYS, "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3")


def container_env(environ: os._Environ | dict[str, str] | None = None) -> dict[str, str]:
    """The store settings and credentials of ``environ`` (default ``os.environ``) that a containerized step needs."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in CONTAINER_ENV_KEYS if environ.get(k)}


def check_store_for_containers(store_uri: str, environ: Mapping[str, str] | None = None) -> str:
    """The store the containerized steps will use (``store_uri``, else ``$MODEL_ADAPTER_STORE``); refused unless it is S3.

    A local store is a folder of this machine, which the step containers do not see: each
    step would look in an empty store of its own and fail with "no model named ...".
    """
    environ = os.environ if environ is None else environ
    uri = store_uri or environ.get("MODEL_ADAPTER_STORE") or ""
    if urlparse(uri).scheme == "s3":
        return uri
    where = f"the local store {uri}" if uri else "the default local store (under $MODEL_ADAPTER_HOME, ~/.model-adapter)"
    raise ValidationError(
        "pipeline run",
        "--runner",
        f"--runner docker runs each step in a container, which cannot see {where}: use an S3 store "
        "(--store s3://bucket/prefix, with AWS_ENDPOINT_URL and credentials in the environment; a local SeaweedFS or "
        "MinIO serves one), or run the steps here with --runner subprocess",
    )


def _writable_by_the_step_user(root: Path) -> None:
    # The image runs steps as uid 1000; the pipeline root is bind-mounted at the same path.
    mode = root.stat().st_mode
    if mode & 0o777 != 0o777:
        root.chmod(stat.S_IMODE(mode) | 0o777)


@contextlib.contextmanager
def local_runner(runner: str, pipeline_root: Path, engine: Engine | str | None = None, labels: dict[str, str] | None = None) -> Iterator[Any]:
    """The ``kfp.local`` runner config named ``runner`` for runs under ``pipeline_root``, live for the block (``labels``: on every container)."""
    from kfp import local

    if runner == "subprocess":
        yield local.SubprocessRunner(use_venv=False)
        return
    if runner != "docker":
        raise ValueError(f"unknown runner {runner!r}; choose one of: {', '.join(RUNNERS)}")
    from kfp.local import docker_task_handler

    engine = engine if isinstance(engine, Engine) else find_engine(engine)
    _writable_by_the_step_user(pipeline_root)
    with docker_api(engine) as docker_host:
        previous = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = docker_host  # docker.from_env(), called by kfp for every step
        kfp_run = docker_task_handler.run_docker_container
        docker_task_handler.run_docker_container = run_container
        try:
            yield local.DockerRunner(network_mode="host", environment=container_env(), labels=dict(labels or {}))
        finally:
            docker_task_handler.run_docker_container = kfp_run
            if previous is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = previous


def run_container(client: Any, image: str, command: list[str], volumes: dict[str, Any], **run_args: Any) -> int:
    """One step's container, as kfp.local's ``run_docker_container`` runs it, but removed only after its exit code is read.

    kfp 2.17 starts steps with ``auto_remove``: a step that exits fast is gone before kfp
    reads its exit code, which kfp then takes for 0 (``NotFound``), and podman answers the
    inspect of such a container with a 500 "no such container" that fails the run.
    """
    from kfp.local.docker_task_handler import add_latest_tag_if_not_present

    image = add_latest_tag_if_not_present(image)
    if not any(image in (i.tags + i.attrs.get("RepoDigests", [])) for i in client.images.list()):
        print(f"Pulling image {image!r}")
        client.images.pull(image)
    container = client.containers.create(image=image, command=command, volumes=volumes, **run_args)
    try:
        container.start()
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        with contextlib.suppress(Exception):  # already removed (Ctrl-C removes the run's containers)
            container.remove(force=True)
