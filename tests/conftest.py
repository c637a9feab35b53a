"""Fixtures shared by the whole suite: isolated home, stores (local and S3), a SeaweedFS server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from adapter_base.storage import ENV_HOME, ENV_STORE, ObjectStore, open_store
from support.seaweed import SeaweedServer

S3_TEST_BUCKET = "model-adapter-tests"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``MODEL_ADAPTER_HOME`` at a fresh temp dir and clear ``MODEL_ADAPTER_STORE``."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv(ENV_HOME, str(home))
    monkeypatch.delenv(ENV_STORE, raising=False)
    return home


# ---------------------------------------------------------------------------- S3
@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A running SeaweedFS (``weed mini``) for the session; the suite FAILS if it cannot start."""
    problem = None
    try:
        server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
        server.start()
    except Exception as exc:  # noqa: BLE001 - reported as a failure, never a skip
        problem = f"SeaweedFS test server could not start: {type(exc).__name__}: {exc}"
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_bucket(seaweed: SeaweedServer) -> str:
    """The session's test bucket on ``seaweed`` (created once)."""
    seaweed.make_bucket(S3_TEST_BUCKET)
    return S3_TEST_BUCKET


@pytest.fixture
def s3_env(seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set the ``AWS_*`` variables (and path style) for ``seaweed``; returns them."""
    env = {**seaweed.env(), "MODEL_ADAPTER_S3_PATH_STYLE": "true"}
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return env


@pytest.fixture
def s3_store_uri(s3_env: dict[str, str], s3_bucket: str) -> str:
    """``s3://<session bucket>/<random prefix>``: a fresh, empty S3 store for this test."""
    return f"s3://{s3_bucket}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_store(s3_store_uri: str) -> Iterator[ObjectStore]:
    """``open_store(s3_store_uri)``."""
    store = open_store(s3_store_uri)
    yield store
    store.close()


# ------------------------------------------------------------------------- local
@pytest.fixture
def local_store_uri(tmp_path: Path) -> str:
    """A path for a fresh local store under ``tmp_path``."""
    return str(tmp_path / "store")


@pytest.fixture
def local_store(local_store_uri: str) -> Iterator[ObjectStore]:
    """``open_store(local_store_uri)``."""
    store = open_store(local_store_uri)
    yield store
    store.close()


# ----------------------------------------------------------------------- either
_BACKENDS = [pytest.param("local", id="local"), pytest.param("s3", id="s3", marks=pytest.mark.s3)]


@pytest.fixture(params=_BACKENDS)
def store_uri(request: pytest.FixtureRequest) -> str:
    """A fresh store URI, once per backend (``local``, ``s3``)."""
    return request.getfixturevalue(f"{request.param}_store_uri")


@pytest.fixture(params=_BACKENDS)
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """A fresh ``ObjectStore``, once per backend (``local``, ``s3``)."""
    return request.getfixturevalue(f"{request.param}_store")
