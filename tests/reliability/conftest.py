"""Fixtures of the reliability suite: a SeaweedFS server of the test's own, to kill and restart."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from adapter_base import Registry
from support.seaweed import SeaweedServer

BUCKET = "reliability"
#: How long the S3 store keeps retrying in these tests (the default is 60 s).
RETRY_DEADLINE_S = "30"


@pytest.fixture
def own_seaweed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeaweedServer]:
    """A fresh SeaweedFS for this test only (so it can be SIGKILLed), with bucket ``reliability``.

    The ``AWS_*`` variables, path style and a 30 s retry deadline are set in the environment,
    so ``open_store`` here and ``model-adapter`` subprocesses both reach it.
    """
    server = SeaweedServer(tmp_path / "seaweed")
    try:
        server.start()
        server.make_bucket(BUCKET)
        for var in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
            monkeypatch.delenv(var, raising=False)
        env = {**server.env(), "MODEL_ADAPTER_S3_PATH_STYLE": "true", "MODEL_ADAPTER_S3_RETRY_DEADLINE": RETRY_DEADLINE_S}
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        yield server
    finally:
        server.kill()  # its data is not needed any more: no graceful (slow) shutdown


@pytest.fixture
def own_store_uri(own_seaweed: SeaweedServer) -> str:
    """A fresh prefix in the bucket of ``own_seaweed``."""
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def own_registry(own_store_uri: str) -> Iterator[Registry]:
    """A registry over ``own_store_uri``."""
    registry = Registry.open(own_store_uri)
    yield registry
    registry.close()


@pytest.fixture
def s3_registry(s3_store_uri: str) -> Iterator[Registry]:
    """A registry over a fresh prefix of the session's SeaweedFS (not to be killed)."""
    registry = Registry.open(s3_store_uri)
    yield registry
    registry.close()


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry over a fresh local store."""
    registry = Registry.open(str(tmp_path / "store"))
    yield registry
    registry.close()
