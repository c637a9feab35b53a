"""``load_from_model``: download a model version's artifacts and hand them to ``load``."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no claims, one loader per home
    fcntl = None  # type: ignore[assignment]

from ..config import positive_or_none
from ..entities import Model
from ..hook_calls import call_hook
from ..hooks import AdapterHooks
from ..local_dirs import safe_join, user_dir
from ..watchdog import call_with_deadline
from ._common import fresh_dir, resolve_model


log = logging.getLogger(__name__)


def artifacts_dir(adapter: AdapterHooks, model: Model) -> Path:
    """``<home>/models/<model.name>/artifacts``: where a model's files are downloaded (never outside the home)."""
    return safe_join(adapter.home, "models", model.name, "artifacts", what="Model.name")


class _Claim:
    """An adapter's hold on a shared local artifacts directory.

    Every process and adapter using the same home downloads a model to the same default
    directory; two loading it at once (two prediction shards on one machine) would wipe
    each other's files. A claim is an ``flock`` on ``<dir>.lock``, held until the adapter
    loads another model or is garbage-collected (the kernel drops it if the process dies).
    An adapter that finds the directory claimed uses a private sibling instead, removed
    with its claim.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.private = base.with_name(f"{base.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}")
        self.path = base
        self._fd: int | None = None

    def acquire(self) -> Path:
        """The shared directory if it is free, else the private one; the same one on every call."""
        if self._fd is not None or self.path == self.private or fcntl is None:
            return self.path
        self.base.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.base}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self.path = self.private
        else:
            self._fd = fd
        return self.path

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None
        shutil.rmtree(self.private, ignore_errors=True)


def _claim(adapter: AdapterHooks, base: Path) -> Path:
    """The directory ``adapter`` may download to: ``base``, or a private one while another loader holds it."""
    claim = adapter.__dict__.get("_artifacts_claim")
    if claim is None or claim.base != base:
        if claim is not None:
            claim.release()
        claim = _Claim(base)
        adapter.__dict__["_artifacts_claim"] = claim
        weakref.finalize(adapter, claim.release)
    path = claim.acquire()
    if path != base:
        log.info("%s is in use by another loader; downloading to %s", base, path)
    return path


def load_from_model(
    adapter: AdapterHooks,
    model: Model | str | None = None,
    *,
    local_path: str | None = None,
    overwrite: bool = True,
    version: int | None = None,
    **kwargs: Any,
) -> Path:
    """Download artifacts (digests verified), bind the model's configuration, call ``load``.

    A model with no artifacts yet (version 0) is loaded from an empty directory, so
    ``load`` can build a fresh model. Returns the local artifacts directory: by default
    ``artifacts_dir``, or a private sibling of it while another loader (a concurrent
    process or adapter) is using that one. A ``local_path`` is emptied first only if the
    framework created it (it holds the marker file ``.model-adapter-dir``, never uploaded
    by ``save_to_model``): one holding other files (a project folder, ``.``) is left
    alone and the files go to a subfolder named after the model (see ``user_dir``).

    A ``load`` still running after ``configuration["load_timeout_s"]`` seconds raises
    ``TimeoutError`` (it is left running on its own daemon thread, which never holds the process).
    """
    entity = resolve_model(adapter, model)
    adapter.bind_model(entity)
    timeout_s = positive_or_none(adapter.configuration, "load_timeout_s")  # a bad value fails before the download
    if local_path:
        path = user_dir(local_path, overwrite, entity.name)
    else:
        path = fresh_dir(_claim(adapter, artifacts_dir(adapter, entity)), overwrite)
    if entity.version > 0 or version:
        manifest = adapter.registry.download_artifacts(entity, path, version)
        if manifest.version != entity.version:
            # Predictions must be stamped with the version actually loaded.
            adapter.bind_model(replace(entity, version=manifest.version, artifacts=manifest))
        log.info("downloaded %s v%d: %d file(s), %d bytes -> %s", entity.name, manifest.version, len(manifest.files), manifest.total_size, path)
    else:
        log.info("model %s has no artifacts yet; loading from an empty %s", entity.name, path)
    call_load(adapter, path, timeout_s, **kwargs)
    log.info("loaded %s (%s) on %s", entity.name, entity.id, _device_for_log(adapter))
    return path


def call_load(adapter: AdapterHooks, path: Path, timeout_s: float | None, **kwargs: Any) -> None:
    """``load(path)``; a ``TimeoutError`` naming the hook and the setting once it has run ``timeout_s`` seconds."""
    if not timeout_s:
        call_hook(adapter, "load", str(path), **kwargs)
        return
    call_with_deadline(
        lambda: call_hook(adapter, "load", str(path), **kwargs),
        float(timeout_s),
        "load",
        f"{type(adapter).__name__}.load did not return within load_timeout_s={timeout_s} "
        "(raise load_timeout_s in the model's configuration, or set it to null to wait forever)",
    )


def _device_for_log(adapter: AdapterHooks) -> str:
    """The device for the log line, without importing PyTorch for an adapter that does not use it
    (resolving ``auto`` imports torch: over a second, in every pipeline step that loads a model)."""
    requested = adapter.configuration.get("device") or "auto"
    if requested == "auto" and "torch" not in sys.modules:
        return "cpu (device auto; PyTorch not in use)"
    return adapter.device
