"""Fixtures shared by the whole suite: isolated home, stores (local and S3), the S3 servers (SeaweedFS, rclone)."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from adapter_base.storage import ENV_HOME, ENV_STORE, ObjectStore, open_store
from support.rclone import RcloneServer
from support.s3server import S3_SERVERS, S3TestServer
from support.seaweed import SeaweedServer

S3_TEST_BUCKET = "model-adapter-tests"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``MODEL_ADAPTER_HOME`` at a fresh temp dir and clear ``MODEL_ADAPTER_STORE``."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv(ENV_HOME, str(home))
    monkeypatch.delenv(ENV_STORE, raising=False)
    return home


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_is_an_interrupt() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` here and in the processes the tests start, even where the suite
    itself was started with SIGINT ignored (``make test &`` from a script, ``nohup``): an ignored signal
    stays ignored across ``exec``, and Python then never turns SIGINT into ``KeyboardInterrupt``."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---------------------------------------------------------------------------- S3
# A test runs on each server with ``@pytest.mark.parametrize("s3_server", S3_SERVERS, indirect=True)``.
_SERVER_FIXTURE = dict(zip(S3_SERVERS, ("seaweed", "rclone")))  # server id -> its session fixture


def _session_server(make: Callable[[], S3TestServer], what: str) -> Iterator[S3TestServer]:
    """Make and start a server for the session, stop it at the end; the suite FAILS (never
    skips) if it cannot start."""
    problem = None
    try:
        server = make()
        server.start()
    except Exception as exc:  # noqa: BLE001 - reported as a failure, never a skip
        problem = f"{what} test server could not start: {type(exc).__name__}: {exc}"
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3TestServer]:
    """A running SeaweedFS (``weed mini``) for the session."""
    yield from _session_server(lambda: SeaweedServer(tmp_path_factory.mktemp("seaweed")), "SeaweedFS")


@pytest.fixture(scope="session")
def rclone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3TestServer]:
    """A running ``rclone serve s3`` over a local directory for the session."""
    yield from _session_server(lambda: RcloneServer(tmp_path_factory.mktemp("rclone")), "rclone serve s3")


@pytest.fixture
def s3_server(request: pytest.FixtureRequest) -> S3TestServer:
    """The S3 server of this test: SeaweedFS, or each of ``S3_SERVERS`` where parametrized."""
    return request.getfixturevalue(_SERVER_FIXTURE[getattr(request, "param", "seaweedfs")])


@pytest.fixture
def s3_bucket(s3_server: S3TestServer) -> str:
    """The test bucket on ``s3_server`` (created on first use)."""
    s3_server.make_bucket(S3_TEST_BUCKET)
    return S3_TEST_BUCKET


def _use_s3_server(server: S3TestServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**server.env(), "MODEL_ADAPTER_S3_PATH_STYLE": "true"}
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return env


def _fresh_s3_uri(server: S3TestServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the ``AWS_*`` variables at ``server``; a fresh prefix in its test bucket."""
    _use_s3_server(server, monkeypatch)
    server.make_bucket(S3_TEST_BUCKET)
    return f"s3://{S3_TEST_BUCKET}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_env(s3_server: S3TestServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set the ``AWS_*`` variables (and path style) for ``s3_server``; returns them."""
    return _use_s3_server(s3_server, monkeypatch)


@pytest.fixture
def s3_store_uri(s3_server: S3TestServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<test bucket>/<random prefix>``: a fresh, empty S3 store for this test."""
    return _fresh_s3_uri(s3_server, monkeypatch)


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
_BACKENDS = [pytest.param("local", id="local")] + [pytest.param(s, id=s, marks=pytest.mark.s3) for s in S3_SERVERS]


@pytest.fixture(params=_BACKENDS)
def store_uri(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh store URI, once per backend (``local``, and each of ``S3_SERVERS``)."""
    if request.param == "local":
        return request.getfixturevalue("local_store_uri")
    return _fresh_s3_uri(request.getfixturevalue(_SERVER_FIXTURE[request.param]), monkeypatch)


@pytest.fixture
def store(store_uri: str) -> Iterator[ObjectStore]:
    """A fresh ``ObjectStore``, once per backend (``local``, and each of ``S3_SERVERS``)."""
    store = open_store(store_uri)
    yield store
    store.close()
