"""Small things every flow needs: resolving records and naming local directories."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from ..entities import Dataset, Model
from ..hooks import AdapterHooks


def resolve_model(adapter: AdapterHooks, model: Model | str | None) -> Model:
    """The latest record of ``model`` (an entity, name or id), or the adapter's bound model."""
    if model is None:
        if adapter.bound_model is None:
            raise ValueError("no model given and the adapter has none bound (call load_from_model first)")
        model = adapter.bound_model
    return adapter.registry.get_model(model.id if isinstance(model, Model) else model)


def resolve_dataset(adapter: AdapterHooks, dataset: Dataset | str) -> Dataset:
    """A dataset entity from an entity, name or id."""
    if isinstance(dataset, Dataset):
        return dataset
    return adapter.registry.get_dataset(dataset)


def timestamp() -> str:
    """A UTC timestamp usable as a directory name, sortable."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")


def fresh_dir(path: Path, overwrite: bool) -> Path:
    """Create ``path``; with ``overwrite`` an existing one is emptied first."""
    if overwrite and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
