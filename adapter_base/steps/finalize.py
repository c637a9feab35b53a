"""``finalize``: the train pipeline's exit step; a run that did not succeed leaves the model ``failed``.

It runs after everything else (``dsl.ExitHandler``), even when a step failed or the run
was cancelled, and decides from the final state the runner passes
(``PipelineTaskFinalStatus.state``), or from the run's journal when that state says neither.
"""

from __future__ import annotations

from ..errors import NotFoundError
from ..registry import Registry
from ..secrets import redact
from .journal import TRAIN_STEPS, finished_steps, unfinished_step

#: States that say the wrapped steps succeeded: the KFP backend passes the MLMD state of the
#: exit handler's DAG (``COMPLETE``; ``CACHED`` for a cached one), ``kfp.local`` and Vertex pass ``SUCCEEDED``.
SUCCESS_STATES = frozenset({"COMPLETE", "CACHED", "SUCCEEDED"})
#: States that say they did not: MLMD ``FAILED`` / ``CANCELED``, the ``CANCELLED`` spelling,
#: Argo's ``ERROR``. Any other state (``RUNNING``: the backend did not propagate the DAG's
#: state; ``UNKNOWN``, ``NEW``, empty) is decided from the run's journal in the store.
FAILURE_STATES = frozenset({"FAILED", "CANCELED", "CANCELLED", "ERROR"})


def finalize(model: str, run_id: str, state: str | None, error_message: str | None = None, *, store_uri: str = "") -> str:
    """Make sure a train run that did not succeed leaves the model ``failed``; returns what it did, for the log.

    A success state changes nothing, nor does a run its ``load`` step refused (journal ``checks``).
    A failure state marks the model failed, keeping the
    message a failing step already recorded (``run <run_id>: <step>: ...``). Any other state
    is decided from the store: a failure this run recorded stays; a journal with every step
    finished (``unfinished_step``) is a success; otherwise the model is marked failed naming
    the step that did not finish.
    """
    name = (state or "").strip().upper() or "UNKNOWN"
    said = name.lower()
    if name in SUCCESS_STATES:
        return f"run {run_id} {said}; model {model} left as it is"
    with Registry.open(store_uri or None) as registry:
        try:
            current = registry.get_model(model)
        except NotFoundError as exc:
            return f"run {run_id} {said}; cannot record it: {exc}"
        prefix = f"run {run_id}:"
        journal = finished_steps(registry, run_id)
        checks = journal.get("checks", {})
        if checks.get("passed") is False:
            return f"run {run_id} {said}: refused before any work ({checks.get('reason')}); model {model} left as it is"
        if current.status == "failed" and (current.status_message or "").startswith(prefix):
            return f"run {run_id} {said}; model {model} already records it: {current.status_message}"
        if name in FAILURE_STATES:
            detail = error_message or "a step did not complete"
        else:
            missing = unfinished_step(journal)
            if missing is None:
                committed = journal["commit"].get("version")
                return f"run {run_id} {said}; its journal shows every step finished (version {committed}); model {model} left as it is"
            done = ", ".join(step for step in TRAIN_STEPS if step in journal) or "none"
            detail = f"step {missing} did not finish (finished: {done})"
        message = redact(f"{prefix} pipeline {said}: {detail}")
        registry.set_status(current, "failed", message)
        return f"model {model} marked failed: {message}"
