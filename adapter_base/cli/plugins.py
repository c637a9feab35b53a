"""Commands and dataset sources other packages add to the ``model-adapter`` CLI, through entry points.

The core CLI imports nothing above ``adapter_base``: ``pipelines`` adds the ``pipeline``
command and ``examples`` the ``demo`` command and the ``digits`` dataset source, each
declared in ``pyproject.toml``::

    [project.entry-points."model_adapter.cli"]
    pipeline = "pipelines.cli:register"            # register(subparsers) adds a command

    [project.entry-points."model_adapter.dataset_sources"]
    digits = "examples.digits.dataset:import_digits"  # (registry, name, *, seed, limit) -> Dataset
"""

from __future__ import annotations

import argparse
import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable

log = logging.getLogger(__name__)

COMMANDS_GROUP = "model_adapter.cli"
DATASET_SOURCES_GROUP = "model_adapter.dataset_sources"

#: A named dataset source: ``source(registry, name, *, seed, limit)`` imports it and returns the dataset.
DatasetSource = Callable[..., Any]


def _entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def register_commands(sub: argparse._SubParsersAction) -> None:
    """Add every installed command (``model_adapter.cli`` entry points); one that cannot be imported is skipped with a warning."""
    for ep in _entry_points(COMMANDS_GROUP):
        try:
            register = ep.load()
        except ImportError as exc:  # e.g. a trimmed image without the package that declares it
            log.warning("command %r (%s) is not available: %s", ep.name, ep.value, exc)
            continue
        register(sub)


def dataset_source_names() -> list[str]:
    """The names of the installed dataset sources (``model_adapter.dataset_sources`` entry points)."""
    return [ep.name for ep in _entry_points(DATASET_SOURCES_GROUP)]


def dataset_source(name: str) -> DatasetSource | None:
    """The installed dataset source called ``name``, or None when there is none."""
    for ep in _entry_points(DATASET_SOURCES_GROUP):
        if ep.name == name:
            return ep.load()
    return None
