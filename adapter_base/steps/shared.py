"""What every step shares: how it starts (logging, exit), and marking the model failed when the step fails.

A step refused because another writer moved the model past this run's base version
(``VersionConflictError``) leaves the model alone (its version and status are the other
writer's) and journals ``superseded`` instead, for ``finalize``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from ..entities import Model
from ..errors import VersionConflictError
from ..registry import Registry
from ..secrets import install_redaction, redact
from ..shutdown import exit_when_done
from .journal import SUPERSEDED, record_step
from .model_ref import ModelRef

log = logging.getLogger(__name__)


def start_step() -> None:
    """What a step's component runs first: ``configure_step_logging``, and the process exits once the step is
    done (its outputs written) even if the adapter left threads running (``shutdown.exit_when_done``)."""
    configure_step_logging()
    exit_when_done()


def configure_step_logging() -> None:
    """Info-level logs for a pipeline step, with every line (the adapter's too), warning and traceback redacted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_redaction()


def mark_failed(registry: Registry, model: Model | str, run_id: str, step: str, exc: BaseException) -> None:
    """Mark the model ``failed`` with ``run <run_id>: <step>: <error>`` (best effort, never raises)."""
    try:
        target = registry.get_model(model.id if isinstance(model, Model) else model)
        registry.set_status(target, "failed", redact(f"run {run_id}: {step}: {type(exc).__name__}: {exc}"))
    except Exception as err:  # noqa: BLE001 - recording must not hide the original error
        log.error("cannot record the failure of %s on the model: %s", step, err)


def record_superseded(registry: Registry, model: Model, run_id: str, step: str, base: int, exc: VersionConflictError) -> None:
    """Journal that ``step`` of run ``run_id`` was refused by a newer version (best effort, never raises)."""
    try:
        current = registry.get_model(model.id)
        record_step(registry, run_id, SUPERSEDED, model_id=model.id, at=step, reason=str(exc), base_version=base, current_version=current.version)
        log.error("%s refused, model %s left at version %d (%s): %s", step, model.name, current.version, current.status, exc)
    except Exception as err:  # noqa: BLE001 - the refusal matters more
        log.error("cannot journal the refusal of %s: %s", step, redact(str(err)))


@contextmanager
def marks_failed(registry: Registry, model: Model, run_id: str, step: str, base: int | None = None) -> Iterator[None]:
    """Run a step's block; if it raises, ``mark_failed`` the model, then re-raise.

    A ``VersionConflictError`` instead leaves the model alone and journals ``superseded``
    (``base``: the version this run started from; default ``model.version``).
    """
    try:
        yield
    except VersionConflictError as exc:
        record_superseded(registry, model, run_id, step, model.version if base is None else base, exc)
        raise
    except BaseException as exc:
        mark_failed(registry, model, run_id, step, exc)
        raise


def check_version(current: Model, ref: ModelRef, step: str) -> None:
    """Refuse to go on when the model moved past the version an earlier step of this run saw."""
    if current.version != ref.version:
        raise VersionConflictError(
            f"{step}: model {current.name!r} is at version {current.version}, but this run started from version {ref.version}: "
            f"another writer made version {current.version} meanwhile; it stays (start this run again to train from it)"
        )
