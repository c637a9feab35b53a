"""``load_from_model``: download a model version's artifacts and hand them to ``load``."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..entities import Model
from ._common import fresh_dir, resolve_model

if TYPE_CHECKING:
    from ..adapter import BaseModelAdapter

log = logging.getLogger(__name__)


def artifacts_dir(adapter: "BaseModelAdapter", model: Model) -> Path:
    """``<home>/models/<model.name>/artifacts``: where a model's files are downloaded."""
    return adapter.home / "models" / model.name / "artifacts"


def load_from_model(
    adapter: "BaseModelAdapter",
    model: Model | str | None = None,
    *,
    local_path: str | None = None,
    overwrite: bool = True,
    version: int | None = None,
    **kwargs: Any,
) -> Path:
    """Download artifacts (digests verified), bind the model's configuration, call ``load``.

    A model with no artifacts yet (version 0) is loaded from an empty directory, so
    ``load`` can build a fresh model. Returns the local artifacts directory.
    """
    entity = resolve_model(adapter, model)
    adapter.bind_model(entity)
    path = Path(local_path) if local_path else artifacts_dir(adapter, entity)
    fresh_dir(path, overwrite)
    if entity.version > 0 or version:
        manifest = adapter.registry.download_artifacts(entity, path, version)
        if manifest.version != entity.version:
            # Predictions must be stamped with the version actually loaded.
            adapter.bind_model(replace(entity, version=manifest.version, artifacts=manifest))
        log.info("downloaded %s v%d: %d file(s), %d bytes -> %s", entity.name, manifest.version, len(manifest.files), manifest.total_size, path)
    else:
        log.info("model %s has no artifacts yet; loading from an empty %s", entity.name, path)
    adapter.load(str(path), **kwargs)
    log.info("loaded %s (%s) on %s", entity.name, entity.id, adapter.device)
    return path
