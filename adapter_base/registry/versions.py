"""Model versions in the store: uploading, staging and committing artifact trees, and reading them back.

A version becomes visible in three writes, in order: its files, its manifest
(``models/<id>/versions/<NNNNNN>/manifest.json``), then the model record that names it
(written by ``Registry``); its writer claims the number first (``version_claims``). A
reader sees the previous version or the complete new one, never a partial one. A staged
tree (``models/<id>/staging/<run_id>/``) is a candidate no reader sees until it is
committed as the next version.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from ..concurrency import map_all, ordered_map
from ..entities import ArtifactFile, ArtifactManifest, Model
from ..errors import NotFoundError, ValidationError
from ..secrets import redact
from ..storage import ObjectStore
from . import layout
from .artifacts import download_tree, local_files, upload_tree
from .identity import check_identity
from .version_claims import VersionClaim, VersionClaims

log = logging.getLogger(__name__)


class ModelVersions:
    """The files and manifests of every model's versions and staged candidates in ``store``.

    Transfers run on ``pool``; copies keep ``2 * io_workers`` in flight.
    """

    def __init__(self, store: ObjectStore, pool: ThreadPoolExecutor, io_workers: int) -> None:
        self.store = store
        self.pool = pool
        self.io_workers = io_workers
        self.claims = VersionClaims(store)

    def publish(self, claim: VersionClaim, model_name: str, local_dir: str | Path) -> ArtifactManifest:
        """Upload ``local_dir`` as the claimed version's files, then write its manifest (last, if the claim still holds)."""
        model_id, version = claim.model_id, claim.version
        _holds_files(local_dir)
        files = upload_tree(self.store, local_dir, lambda rel: layout.artifact_file(model_id, version, rel), self.pool)
        manifest = ArtifactManifest(model_id=model_id, version=version, files=files)
        manifest.validate()
        self.claims.confirm(claim, model_name)
        return self._write_manifest(manifest)

    def copy_current(self, source: Model, model_id: str, version: int, *, of: ArtifactManifest | None = None) -> ArtifactManifest:
        """Copy ``source``'s current files (or those of ``of``, one of its versions; server-side) as ``version`` of ``model_id``, manifest last."""
        src = of or source.artifacts
        if src is None:
            raise NotFoundError(f"model {source.name!r} has no artifacts yet (version 0)")
        self._copy_files(
            src.files,
            lambda rel: layout.artifact_file(source.id, src.version, rel),
            lambda rel: layout.artifact_file(model_id, version, rel),
        )
        return self._write_manifest(ArtifactManifest(model_id=model_id, version=version, files=list(src.files)))

    def stage(self, model: Model, local_dir: str | Path, run_id: str) -> ArtifactManifest:
        """Upload ``local_dir`` as run ``run_id``'s candidate for ``model`` (replacing an earlier one of that run)."""
        layout.check_name("run", run_id)
        _holds_files(local_dir)
        self.store.delete_prefix(layout.staging_prefix(model.id, run_id))
        files = upload_tree(self.store, local_dir, lambda rel: layout.staged_file(model.id, run_id, rel), self.pool)
        staged = ArtifactManifest(model_id=model.id, version=max(1, model.version), files=files)
        self.store.put_json(layout.staged_manifest(model.id, run_id), staged.to_dict())
        return staged

    def staged(self, model: Model, run_id: str) -> ArtifactManifest:
        """The manifest of run ``run_id``'s candidate; ``NotFoundError`` if that run staged none."""
        key = layout.staged_manifest(model.id, run_id)
        try:
            staged = ArtifactManifest.from_dict(self.store.get_json(key))
        except NotFoundError:
            raise NotFoundError(f"model {model.name!r} has no staged artifacts for run {run_id!r}") from None
        return check_identity(staged, key, model_id=model.id)

    def publish_staged(self, claim: VersionClaim, model_name: str, run_id: str, staged: ArtifactManifest) -> ArtifactManifest:
        """Copy a staged candidate's files (server-side) as the claimed version, then write its manifest (last, if the claim still holds)."""
        model_id, version = claim.model_id, claim.version
        self._copy_files(
            staged.files,
            lambda rel: layout.staged_file(model_id, run_id, rel),
            lambda rel: layout.artifact_file(model_id, version, rel),
        )
        self.claims.confirm(claim, model_name)
        return self._write_manifest(ArtifactManifest(model_id=model_id, version=version, files=list(staged.files)))

    def discard(self, model_id: str, version: int) -> None:
        """Best effort: remove a version no record names, manifest first (its writer still holds the claim)."""
        try:
            self.store.delete(layout.manifest(model_id, version))
            self.store.delete_prefix(layout.version_prefix(model_id, version))
        except Exception as exc:  # noqa: BLE001 - the conflict being raised matters more
            log.warning("could not remove the unused version %d of model %s: %s", version, model_id, redact(str(exc)))

    def drop_staged(self, model_id: str, run_id: str) -> None:
        """Remove run ``run_id``'s candidate (after it was committed)."""
        self.store.delete_prefix(layout.staging_prefix(model_id, run_id))

    def manifest(self, model: Model, version: int | None = None) -> ArtifactManifest:
        """The manifest of ``version`` (default: the model's current one)."""
        if version is None or version == model.version:
            if model.artifacts is None:
                raise NotFoundError(f"model {model.name!r} has no artifacts yet (version 0)")
            return check_identity(model.artifacts, layout.model_record(model.id), model_id=model.id, version=model.version)
        return self._read_manifest(model.id, version)

    def manifests(self, model: Model) -> list[ArtifactManifest]:
        """The manifests of versions 1 to the model's current one, oldest first; a missing one is left out."""
        found = []
        versions = range(1, model.version + 1)
        for _, result in ordered_map(lambda v: self._read_manifest(model.id, v), versions, pool=self.pool, window=2 * self.io_workers):
            if isinstance(result, NotFoundError):
                continue
            if isinstance(result, BaseException):
                raise result
            found.append(result)
        return found

    def download(self, model: Model, dest_dir: str | Path, version: int | None = None) -> ArtifactManifest:
        """Download a version's files into ``dest_dir``, verifying every SHA-256 digest."""
        manifest = self.manifest(model, version)
        download_tree(
            self.store, manifest.files, lambda rel: layout.artifact_file(model.id, manifest.version, rel), dest_dir, self.pool
        )
        return manifest

    def _read_manifest(self, model_id: str, version: int) -> ArtifactManifest:
        """The stored manifest of ``version``; one that names another model or version is a ``ValidationError``."""
        key = layout.manifest(model_id, version)
        return check_identity(ArtifactManifest.from_dict(self.store.get_json(key)), key, model_id=model_id, version=version)

    def _write_manifest(self, manifest: ArtifactManifest) -> ArtifactManifest:
        """Write ``manifest`` (after its files): from now on the version exists."""
        self.store.put_json(layout.manifest(manifest.model_id, manifest.version), manifest.to_dict())
        return manifest

    def _copy_files(self, files: Iterable[ArtifactFile], src_key: Callable[[str], str], dst_key: Callable[[str], str]) -> None:
        """Copy manifest rows within the store in parallel; the first error is raised once none is in flight."""
        map_all(lambda f: self.store.copy(src_key(f.path), dst_key(f.path)), files, self.pool, 2 * self.io_workers)


def _holds_files(local_dir: str | Path) -> None:
    """Refuse to make a version (or a staged candidate) of an empty directory."""
    if not local_files(local_dir):
        raise ValidationError("artifacts", str(local_dir), "holds no file: a model version needs at least one")
