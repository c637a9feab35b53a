"""``finalize``: the train pipeline's exit step; a run that did not succeed leaves the model ``failed``.

It runs after everything else (``dsl.ExitHandler``), even when a step failed or the run
was cancelled, and decides from the final state the runner passes
(``PipelineTaskFinalStatus.state``), or from the run's journal when that state says neither.
"""

from __future__ import annotations

import logging

from ..errors import NotFoundError
from ..registry import Registry
from ..secrets import redact
from .journal import CHECKS, SUPERSEDED, TRAIN_STEPS, finished_steps, unfinished_step

log = logging.getLogger(__name__)

#: States that say the wrapped steps succeeded: the KFP backend passes the MLMD state of the
#: exit handler's DAG (``COMPLETE``; ``CACHED`` for a cached one), ``kfp.local`` and Vertex pass ``SUCCEEDED``.
SUCCESS_STATES = frozenset({"COMPLETE", "CACHED", "SUCCEEDED"})
#: States that say they did not: MLMD ``FAILED`` / ``CANCELED``, the ``CANCELLED`` spelling,
#: Argo's ``ERROR``. Any other state (``RUNNING``: the backend did not propagate the DAG's
#: state; ``UNKNOWN``, ``NEW``, empty) is decided from the run's journal in the store.
FAILURE_STATES = frozenset({"FAILED", "CANCELED", "CANCELLED", "ERROR"})


def finalize(model: str, run_id: str, state: str | None, error_message: str | None = None, *, store_uri: str = "") -> str:
    """Make sure a train run that did not succeed leaves the model ``failed``; returns what it did, for the log.

    A success state changes nothing, nor does a run refused before any work (journal
    ``checks``, and no step finished) or refused because another writer's newer version
    stood (journal ``superseded``, with the model indeed past the run's base): the
    model's status belongs to that version. A failure state marks the model failed,
    keeping the message a failing step already recorded (``run <run_id>: <step>: ...``).
    Any other state is decided from the store: a failure this run recorded stays; a
    journal with every step finished (``unfinished_step``) is a success; otherwise the
    model is marked failed naming the step that did not finish. Only sound journal
    records count (``journal.check_record``). It never raises on what it reads: whatever
    it cannot read or record is in the message it returns (and logged).
    """
    name = (state or "").strip().upper() or "UNKNOWN"
    said = name.lower()
    if name in SUCCESS_STATES:
        return f"run {run_id} {said}; model {model} left as it is"
    try:
        with Registry.open(store_uri or None) as registry:
            return _decide(registry, model, run_id, name, error_message)
    except Exception as exc:  # noqa: BLE001 - the exit step reports, it never fails on what it finds
        message = redact(f"run {run_id} {said}; cannot record it on model {model}: {type(exc).__name__}: {exc}")
        log.error("%s", message)
        return message


def _decide(registry: Registry, model: str, run_id: str, name: str, error_message: str | None) -> str:
    said = name.lower()
    try:
        current = registry.get_model(model)
    except NotFoundError as exc:
        return f"run {run_id} {said}; cannot record it: {exc}"
    prefix = f"run {run_id}:"
    journal = finished_steps(registry, run_id, current.id)
    started = [step for step in TRAIN_STEPS if step in journal]
    checks, superseded = journal.get(CHECKS), journal.get(SUPERSEDED)
    if checks is not None and checks["passed"] is False and not started:
        return f"run {run_id} {said}: refused before any work ({checks['reason']}); model {model} left as it is"
    if superseded is not None and current.version != superseded["base_version"]:
        return (
            f"run {run_id} {said}: {superseded['at']} refused: {superseded['reason']}; "
            f"model {model} left at version {current.version} ({current.status})"
        )
    if current.status == "failed" and (current.status_message or "").startswith(prefix):
        return f"run {run_id} {said}; model {model} already records it: {current.status_message}"
    if name in FAILURE_STATES:
        detail = error_message if isinstance(error_message, str) and error_message else "a step did not complete"
    else:
        missing = unfinished_step(journal)
        if missing is None:
            committed = journal["commit"]["version"]
            return f"run {run_id} {said}; its journal shows every step finished (version {committed}); model {model} left as it is"
        detail = f"step {missing} did not finish (finished: {', '.join(started) or 'none'})"
    message = redact(f"{prefix} pipeline {said}: {detail}")
    registry.set_status(current, "failed", message)
    return f"model {model} marked failed: {message}"
