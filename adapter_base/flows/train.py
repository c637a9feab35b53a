"""``train_model``: train on the model's subsets and save the result as a new version
(``stage_training``: stage it under a run id instead, for the pipeline's ``commit`` step).

Before anything changes, the run is checked (``preflight.check_training``: subsets with
annotated items, labels the dataset shares); a refused run leaves the model as it was.
Status goes ``training`` then ``trained``; on any error it is ``failed`` with the
error recorded, and nothing the failed run produced becomes the current version.
Checkpoints the adapter writes to ``checkpoint_dir`` are published to the store as a
whole set at each epoch end (``registry.checkpoints``) and handed back as
``resume_checkpoint`` on the next run; they are removed once a run succeeds.
"""

from __future__ import annotations

import logging
import numbers
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from ..entities import Model
from ..errors import ValidationError, VersionConflictError
from ..hook_calls import call_hook
from ..hooks import AdapterHooks
from ..metrics import json_safe
from ..registry import Registry
from ..registry.checkpoints import CheckpointSync
from ..secrets import redact
from ._common import fresh_dir, resolve_dataset, resolve_model
from .load import load_from_model
from .preflight import check_training
from .prepare_data import default_root, prepare_data
from .save import call_save, save_to_model

log = logging.getLogger(__name__)

EpochCallback = Callable[..., None]


def _progress_reporter(progress: Any) -> Callable[[int, int, dict[str, Any] | None], None]:
    """Adapt ``progress`` (None, a callable, or an object with ``update``) to one call shape."""
    if progress is None:
        return lambda i, n, metrics: None
    if hasattr(progress, "update") and not callable(progress):
        return lambda i, n, metrics: progress.update(progress=int(100 * (i + 1) / max(n, 1)), message=f"epoch {i + 1}/{n}")
    if callable(progress):
        return lambda i, n, metrics: progress(i, n, metrics)
    raise ValidationError("train_model", "progress", f"expected a callable or an object with update(), got {type(progress).__name__}")


#: What a training run does with its result: ``(model, output_path, metrics) -> the model's new record``.
KeepResult = Callable[[Model, Path, dict[str, Any]], Model]


def train_model(
    adapter: AdapterHooks,
    model: Model | str,
    *,
    cleanup: bool = False,
    progress: Any = None,
    dataset: str | None = None,
    **kwargs: Any,
) -> Model:
    """Load, prepare data, ``train``, save as a new version (status ``trained``); returns the model record."""

    def save_version(entity: Model, output_path: Path, metrics: dict[str, Any]) -> Model:
        saved = save_to_model(adapter, local_path=str(output_path), model=entity)
        return adapter.registry.update_model(saved, status="trained", status_message=None, metrics=metrics)

    trained = _train(adapter, model, dataset, cleanup, progress, save_version, **kwargs)
    log.info("trained %s: now version %d", trained.name, trained.version)
    return trained


def stage_training(
    adapter: AdapterHooks,
    model: Model | str,
    run_id: str,
    *,
    cleanup: bool = False,
    progress: Any = None,
    dataset: str | None = None,
    **kwargs: Any,
) -> Model:
    """Train as ``train_model`` does, but stage the result under ``run_id`` instead of saving a version.

    The status stays ``training``; ``Registry.commit_staged(model, run_id)`` later makes the
    staged files the next version (the pipeline's ``commit`` step). Returns the model record
    with the run's configuration and metrics, not written: the commit writes them with the
    version, so a run whose commit is refused changes nothing of the model's record.
    """
    if not run_id:
        raise ValidationError("stage_training", "run_id", "a run_id is needed to stage a training result")
    registry = adapter.registry

    def stage(entity: Model, output_path: Path, metrics: dict[str, Any]) -> Model:
        call_save(adapter, output_path)
        registry.stage_artifacts(entity, output_path, run_id)
        return replace(registry.get_model(entity.id), configuration=dict(adapter.configuration), metrics=metrics)

    trained = _train(adapter, model, dataset, cleanup, progress, stage, **kwargs)
    log.info("trained %s: staged as run %s (commit it to make a version)", trained.name, run_id)
    return trained


def _training_metrics(before: dict[str, Any], history: list[dict[str, Any]], curves: dict[str, Any]) -> dict[str, Any]:
    """The model's metrics after a run: its last epoch's callback metrics and its curves (the previous run's are dropped)."""
    metrics = {**before, "training": json_safe(history[-1]) if history else {}}
    metrics.pop("curves", None)
    if curves:
        metrics["curves"] = json_safe(curves)
    return metrics


def _train(
    adapter: AdapterHooks, model: Model | str, dataset: str | None, cleanup: bool, progress: Any, keep: KeepResult, **kwargs: Any
) -> Model:
    """The training run both entry points share: status, data, checkpoints, ``train``, then ``keep`` the result."""
    registry = adapter.registry
    entity = resolve_model(adapter, model)
    dataset_ref = dataset or entity.dataset_id
    if not dataset_ref:
        raise ValidationError("Model", "dataset_id", f"model {entity.name!r} has no dataset to train on")
    report = _progress_reporter(progress)
    ds = resolve_dataset(adapter, dataset_ref)
    check_training(registry, entity, ds)  # refused before the status changes: a refused run leaves no trace
    _check_still_at(registry, entity)  # a newer version's status is not this run's to change
    registry.set_status(entity, "training")
    log.info("training %s (%s) from version %d", entity.name, entity.id, entity.version)
    root: Path | None = None
    checkpoints: CheckpointSync | None = None
    try:
        load_from_model(adapter, entity)
        root = default_root(adapter)
        data_path, output_path = prepare_data(adapter, ds, root_path=str(root))
        checkpoints = CheckpointSync(registry.store, entity.id, fresh_dir(root / "checkpoints", True), registry.pool)
        resume = checkpoints.restore()
        if resume is not None:
            log.info("resuming from the checkpoints of an interrupted run: %s", resume)
        history: list[dict[str, Any]] = []
        adapter.curves = {}

        def on_epoch_end_callback(
            i_epoch: int, n_epochs: int | None = None, metrics: dict[str, Any] | None = None, *, n_epoch: int | None = None
        ) -> None:
            # ``n_epoch``: the name dtlpy's train_model passes it under.
            n_epochs = n_epochs if n_epochs is not None else (n_epoch if n_epoch is not None else i_epoch + 1)
            history.append({"epoch": i_epoch, **(metrics or {})})
            for name, value in (metrics or {}).items():
                if isinstance(value, numbers.Real) and not isinstance(value, bool):
                    adapter.log_curve(name, name, i_epoch, value)
            pushed = checkpoints.push()
            log.info("epoch %d/%d done%s%s", i_epoch + 1, n_epochs, f" {metrics}" if metrics else "", f" ({pushed} checkpoint file(s) kept)" if pushed else "")
            report(i_epoch, n_epochs, metrics)

        call_hook(
            adapter,
            "train",
            str(data_path),
            output_path=str(output_path),
            on_epoch_end_callback=on_epoch_end_callback,
            checkpoint_dir=str(checkpoints.local_dir),
            resume_checkpoint=str(resume) if resume else None,
            **kwargs,
        )
        trained = keep(entity, output_path, _training_metrics(entity.metrics, history, adapter.curves))
        checkpoints.clear()
    except VersionConflictError as exc:  # another writer's version stands, with its status
        log.error("training %s from version %d: not saved: %s", entity.name, entity.version, exc)
        _undo_training_status(registry, entity)
        if checkpoints is not None:  # trained from a version that is no longer current: nothing to resume
            try:
                checkpoints.clear()
            except Exception as clear_exc:  # noqa: BLE001 - the conflict matters more
                log.warning("could not remove the superseded run's checkpoints: %s", redact(str(clear_exc)))
        raise
    except BaseException as exc:
        message = redact(f"{type(exc).__name__}: {exc}")
        if checkpoints is not None:
            try:  # keep what the adapter wrote after its last epoch-end callback
                checkpoints.push()
            except Exception as push_exc:  # noqa: BLE001 - the training error matters more
                log.warning("could not keep the last checkpoints: %s", redact(str(push_exc)))
        failed = registry.set_status(entity, "failed", message)
        log.error("training %s failed: %s (the current version stays %d)", entity.name, message, failed.version)
        raise
    finally:
        if cleanup and root is not None:
            shutil.rmtree(root, ignore_errors=True)
    adapter.bind_model(trained)
    return trained


def _undo_training_status(registry: Registry, before: Model) -> None:
    """Best effort: give back the status this run replaced with ``training`` (a save that set none leaves it so)."""
    try:
        current = registry.get_model(before.id)
        if current.status == "training" and before.status != "training":
            registry.set_status(current, before.status, before.status_message)
    except Exception as exc:  # noqa: BLE001 - the conflict matters more
        log.warning("could not restore the status of %s: %s", before.name, redact(str(exc)))


def _check_still_at(registry: Registry, entity: Model) -> None:
    """``VersionConflictError`` if the model is no longer at ``entity.version``."""
    current = registry.get_model(entity.id)
    if current.version != entity.version:
        raise VersionConflictError(
            f"model {entity.name!r} is at version {current.version}, not at version {entity.version} this training started from: "
            f"another writer made version {current.version} meanwhile; it stays"
        )
