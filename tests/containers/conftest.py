"""Fixtures of the container tests: the engine, the project image built as ``make image`` builds it, a user image.

Docker where an engine answers, else podman (``pipelines.engine``). Where neither is
available the tests skip with the reason, except under CI (``CI=true``), where
``.ci/run`` installs podman and a missing engine is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[2]
for path in (REPO, REPO / "tests" / "pipelines"):  # the real `pipelines` package; the digits builders of the pipeline tests
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pipelines.engine import Engine, EngineError, find_engine  # noqa: E402

PROJECT_IMAGE = "model-adapter:container-test"
USER_IMAGE = "my-adapters:container-test"
USER_ADAPTER = Path(__file__).parent / "user_adapter"


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The container engine ``make image`` would use (podman with the project's settings here)."""
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "mk" / "podman" / "containers.conf"))
    try:
        found = find_engine()
    except EngineError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the container tests: {exc} (.ci/run installs podman with `make container-deps`)")
        pytest.skip(f"no container engine here: {exc}; `make container-deps` installs podman")
    return found


@pytest.fixture(scope="session")
def project_image(engine: Engine) -> str:
    """The project image, built by ``make image`` itself (wheelhouse on the host, offline build)."""
    proc = subprocess.run(
        ["make", "--no-print-directory", "image", f"IMAGE={PROJECT_IMAGE}", f"VENV={Path(sys.executable).parent.parent}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "MODEL_ADAPTER_CONTAINER_ENGINE": engine.name},
    )
    assert proc.returncode == 0, f"make image failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "built " in proc.stdout and " MB in " in proc.stdout, f"make image printed no size: {proc.stdout[-500:]}"
    print(proc.stdout.strip().splitlines()[-1])
    return engine.image_ref(PROJECT_IMAGE)


@pytest.fixture(scope="session")
def user_image(engine: Engine, project_image: str) -> str:
    """A user's image ``FROM`` the project image, adding the adapter package in ``user_adapter/``."""
    ref = engine.image_ref(USER_IMAGE)
    args = ["build", "--build-arg", f"BASE={project_image}", "-t", ref]
    args += ["--isolation", "chroot", "--network", "host"] if engine.name == "podman" else ["--network", "none"]
    engine.run(*args, str(USER_ADAPTER))
    return ref
