"""Container engines for image builds and containerized local runs: Docker where an engine answers, else podman.

A ``docker`` command may be installed with no engine behind it, so the engine is the one
that answers (``docker info`` succeeds), not the command that exists. podman serves a
Docker-compatible API (``podman system service``) that ``kfp.local.DockerRunner`` uses
through ``DOCKER_HOST``; ``docker_api`` starts one for the duration of a run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from adapter_base.errors import AdapterError
from adapter_base.processes import stop_process

ENGINES: tuple[str, ...] = ("docker", "podman")
ENGINE_ENV = "MODEL_ADAPTER_CONTAINER_ENGINE"
#: The podman settings ``make image`` uses (no rlimits raised, runc, cgroupfs): machines with restricted
#: rlimits fail without them ("error setting rlimit type 7").
PODMAN_CONF = Path(__file__).resolve().parent.parent / "mk" / "podman" / "containers.conf"


class EngineError(AdapterError):
    """No container engine answers, or one failed to start its API."""


@dataclass(frozen=True)
class Engine:
    """A container engine: ``docker`` or ``podman``, called as ``command``."""

    name: str
    command: str

    def run(self, *args: str, check: bool = True, capture: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
        """``<engine> args...``; raises ``EngineError`` with the engine's own message when ``check`` and it fails."""
        proc = subprocess.run([self.command, *args], capture_output=capture, text=True, timeout=timeout, env=engine_environment(self))
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout or "").strip().splitlines()
            raise EngineError(f"{self.name} {args[0]} failed (exit {proc.returncode}): {detail[-1] if detail else 'no output'}")
        return proc

    def image_ref(self, image: str) -> str:
        """The name the engine lists ``image`` under: podman names local images ``localhost/NAME:TAG``."""
        if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
            image += ":latest"
        first = image.split("/", 1)[0]
        has_registry = "/" in image and ("." in first or ":" in first or first == "localhost")
        if self.name == "podman" and not has_registry:
            return f"localhost/{image}"
        return image

    def image_exists(self, image: str) -> bool:
        """Whether ``image`` is in the engine's local store."""
        return self.run("image", "inspect", self.image_ref(image), check=False).returncode == 0

    def image_size(self, image: str) -> int:
        """The image's size in bytes."""
        out = self.run("image", "inspect", "--format", "{{.Size}}", self.image_ref(image)).stdout.strip()
        return int(out.splitlines()[-1])


def engine_environment(engine: "Engine", environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the engine's processes: ``environ`` (default ``os.environ``), for podman with
    ``CONTAINERS_CONF`` set to ``PODMAN_CONF`` as ``make image`` sets it, unless the user set it (even to empty)."""
    env = dict(os.environ if environ is None else environ)
    if engine.name == "podman" and "CONTAINERS_CONF" not in env and PODMAN_CONF.is_file():
        env["CONTAINERS_CONF"] = str(PODMAN_CONF)
    return env


def _answers(command: str) -> bool:
    try:
        return subprocess.run([command, "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_engine(name: str | None = None) -> Engine:
    """The engine to use: ``name`` (or ``$MODEL_ADAPTER_CONTAINER_ENGINE``) if given, else Docker if it answers, else podman."""
    name = name or os.environ.get(ENGINE_ENV) or None
    if name is not None:
        if name not in ENGINES:
            raise EngineError(f"unknown container engine {name!r}; choose one of: {', '.join(ENGINES)}")
        if not shutil.which(name):
            raise EngineError(f"container engine {name!r} is not installed (not on PATH)")
        return Engine(name, name)
    if shutil.which("docker") and _answers("docker"):
        return Engine("docker", "docker")
    if shutil.which("podman"):
        return Engine("podman", "podman")
    hint = "`docker info` fails (no Docker engine running)" if shutil.which("docker") else "neither docker nor podman is installed"
    raise EngineError(f"no container engine answers: {hint}; start Docker or install podman")


@contextlib.contextmanager
def docker_api(engine: Engine, start_timeout: float = 30.0) -> Iterator[str]:
    """Yield a ``DOCKER_HOST`` value whose Docker-compatible API answers for the block.

    Docker: ``$DOCKER_HOST`` or the default socket. podman: a ``podman system service``
    on a private socket, stopped when the block exits.
    """
    if engine.name == "docker":
        yield os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return
    with tempfile.TemporaryDirectory(prefix="model-adapter-podman-") as tmp:
        sock = Path(tmp) / "podman.sock"
        log = open(Path(tmp) / "service.log", "w+")
        proc = subprocess.Popen(
            [engine.command, "system", "service", "--time=0", f"unix://{sock}"], stdout=log, stderr=subprocess.STDOUT, env=engine_environment(engine)
        )
        try:
            deadline = time.monotonic() + start_timeout
            while not sock.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().strip().splitlines()[-3:]
                    raise EngineError(f"podman system service did not start: {' | '.join(tail) or 'no output'}")
                time.sleep(0.05)
            yield f"unix://{sock}"
        finally:
            stop_process(proc)
            log.close()
