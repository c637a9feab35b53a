"""``save_to_model``: package the model with ``save`` and upload it as a new version."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..entities import Model
from ..errors import AdapterContractError
from ..hook_calls import call_hook
from ..hooks import AdapterHooks
from ..registry import layout
from ..registry.artifacts import download_tree, local_files
from ._common import resolve_model


log = logging.getLogger(__name__)


def save_to_model(
    adapter: AdapterHooks,
    *,
    local_path: str | None = None,
    cleanup: bool = False,
    replace: bool = True,
    model: Model | str | None = None,
    **kwargs: Any,
) -> Model:
    """Call ``save(local_path)``, upload every file there as the model's next version.

    The configuration in use is persisted with the version. With ``replace=True`` the
    new version holds exactly the files in ``local_path``; with ``replace=False`` the
    previous version's files that ``save`` did not write are carried over. ``cleanup``
    deletes ``local_path`` afterwards. Returns the updated model. A ``save`` that leaves
    ``local_path`` empty is refused (``AdapterContractError``): no version without files.

    The save is based on the version the caller holds (``model`` given as a ``Model``, else
    the one the adapter loaded): if the model has moved to another version meanwhile, or
    another writer is saving the next one, it is refused with ``VersionConflictError`` and
    nothing is kept (``Registry.upload_artifacts``). A name or id saves over the current version.
    """
    entity = resolve_model(adapter, model)
    held = model if isinstance(model, Model) else adapter.bound_model if model is None else None
    base = held.version if held is not None else entity.version
    own_dir = local_path is None
    path = Path(local_path) if local_path else Path(tempfile.mkdtemp(prefix=f"save-{entity.name}-"))
    path.mkdir(parents=True, exist_ok=True)
    try:
        call_save(adapter, path, **kwargs)
        if not replace and entity.artifacts is not None:
            written = set(local_files(path))
            carried = [f for f in entity.artifacts.files if f.path not in written]
            if carried:
                download_tree(
                    adapter.registry.store,
                    carried,
                    lambda rel: layout.artifact_file(entity.id, entity.version, rel),
                    path,
                    adapter.registry.pool,
                )
        updated = adapter.registry.upload_artifacts(entity, path, base_version=base, configuration=dict(adapter.configuration))
    finally:
        if cleanup or own_dir:
            shutil.rmtree(path, ignore_errors=True)
    adapter.bind_model(updated)
    log.info("saved %s as version %d (%d bytes)", updated.name, updated.version, updated.artifacts.total_size if updated.artifacts else 0)
    return updated


def call_save(adapter: AdapterHooks, path: Path, **kwargs: Any) -> None:
    """``save(path)``, after which ``path`` must hold at least one file: an empty version is refused."""
    call_hook(adapter, "save", str(path), **kwargs)
    if not local_files(path):
        raise AdapterContractError(
            f"{type(adapter).__name__}.save wrote no file into {path}: a model version needs at least one file, so nothing was saved"
        )
