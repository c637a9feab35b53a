"""Fixtures of the pipeline tests.

``tests/`` is on ``sys.path`` (the root conftest lives there), so this directory,
``tests/pipelines``, could be taken for the ``pipelines`` package as a namespace
portion. Putting the repository root first makes ``import pipelines`` always find
the real package (a regular package wins over namespace portions).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture
def pipeline_root(tmp_path: Path) -> str:
    """A fresh local ``pipeline_root`` for a ``kfp.local`` run."""
    root = tmp_path / "kfp-root"
    root.mkdir()
    return str(root)
