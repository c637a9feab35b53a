"""Fixtures of the core tests: registries over the shared ``store`` fixtures."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from adapter_base import ObjectStore, Registry
from adapter_base.storage import LocalStore, adapter_home


@pytest.fixture
def registry(store: ObjectStore) -> Iterator[Registry]:
    """A registry over the parametrized ``store`` (local and S3)."""
    reg = Registry(store, io_workers=4)
    yield reg
    reg.pool.shutdown(wait=True)  # the store fixture closes the store


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry over a fresh local store (for flow tests that need not run on S3)."""
    reg = Registry(LocalStore(tmp_path / "store"), io_workers=4)
    yield reg
    reg.close()


@pytest.fixture
def home() -> Path:
    """``$MODEL_ADAPTER_HOME`` of this test (a temp dir, set by the suite's autouse fixture)."""
    home = adapter_home()
    assert "pytest" in str(home) or str(home).startswith(tempfile.gettempdir()), f"home is not isolated: {home}"
    return home


@pytest.fixture
def live_process() -> Iterator[int]:
    """The pid of a live process of this host (a claim's writer that is still there)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()
