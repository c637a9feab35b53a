"""Fixtures of the bench smoke tests: the repository root on ``sys.path`` (``bench`` is not installed).

No ``__init__.py`` here: ``tests/`` is on ``sys.path``, and a regular package ``bench``
in ``tests/bench`` would shadow the real one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from adapter_base import Registry  # noqa: E402
from adapter_base.storage import LocalStore  # noqa: E402


@pytest.fixture
def bench_registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(LocalStore(tmp_path / "store"))
    yield reg
    reg.close()


@pytest.fixture
def blas_one_thread() -> Iterator[None]:
    from bench.models import limit_blas_threads

    limiter = limit_blas_threads(1)
    yield
    if limiter is not None:
        limiter.restore_original_limits()
