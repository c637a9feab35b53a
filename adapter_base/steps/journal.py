"""The run journal: ``runs/<run_id>/steps/<step>.json`` records that a train step of that run finished.

Each train step writes its record when it finishes, so the exit step (``finalize``) can
tell what a run did when the backend's final state does not say (``RUNNING``). Two more
records say a run was refused, leaving the model alone: ``checks`` (the load step's
checks failed) and ``superseded`` (a step found that another writer had moved the model
past this run's base version).

A record is proof of nothing unless it is a JSON object that names the run, the step
and the model of the key it was read from, with each field the step writes of the right
type (``check_record``): anything else is treated as if the step had not finished.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ..entities._base import utc_now
from ..metrics import json_safe
from ..registry import Registry, layout
from ..secrets import redact

log = logging.getLogger(__name__)

#: The train pipeline's steps in order; ``promote`` runs only when evaluate decided to promote.
TRAIN_STEPS = ("load", "train", "commit", "evaluate", "promote")
#: Records of a refused run: the model was left as it was.
CHECKS, SUPERSEDED = "checks", "superseded"

_INT, _BOOL, _STR, _DICT = "an integer", "a boolean", "a string", "an object"
#: The fields each record must hold, beyond ``run_id``, ``step`` and ``model_id``, and their types.
RECORD_FIELDS: dict[str, dict[str, str]] = {
    "load": {"version": _INT},
    "train": {"base_version": _INT, "configuration": _DICT, "training": _DICT},
    "commit": {"version": _INT, "base_version": _INT},
    "evaluate": {"version": _INT, "promote": _BOOL},
    "promote": {"version": _INT, "alias": _STR},
    CHECKS: {"passed": _BOOL, "reason": _STR},
    SUPERSEDED: {"at": _STR, "reason": _STR, "base_version": _INT, "current_version": _INT},
}


def _has_type(value: Any, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return isinstance(value, {_BOOL: bool, _STR: str, _DICT: dict}[kind])


def check_record(data: Any, run_id: str, step: str, model_id: str) -> str | None:
    """Why ``data``, read as ``step``'s record of run ``run_id`` for model ``model_id``, proves nothing; None if it is sound."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    for name, expected in (("run_id", run_id), ("step", step), ("model_id", model_id)):
        if data.get(name) != expected:
            return f"its {name} is {data.get(name)!r}, not {expected!r}"
    for name, kind in RECORD_FIELDS.get(step, {}).items():
        if not _has_type(data.get(name), kind):
            return f"its {name} is {data.get(name)!r}, not {kind}"
    return None


def record_step(registry: Registry, run_id: str, step: str, *, model_id: str, **facts: Any) -> None:
    """Write the journal record of a finished step (``facts`` made strict JSON); no run id (``""``, ``-``): nothing."""
    if run_id and run_id != "-":
        record = {**json_safe(facts), "run_id": run_id, "step": step, "model_id": model_id, "finished_at": utc_now()}
        registry.store.put_json(layout.step_record(run_id, step), record)


def read_record(registry: Registry, run_id: str, step: str, model_id: str) -> dict[str, Any] | None:
    """``step``'s record of run ``run_id`` if it is there and sound (``check_record``); None otherwise (logged)."""
    key = layout.step_record(run_id, step)
    try:
        data = registry.store.get_json(key)
    except Exception as exc:  # noqa: BLE001 - missing, unreadable, not JSON: no proof the step finished
        log.debug("journal record %s: %s", key, redact(str(exc)))
        return None
    problem = check_record(data, run_id, step, model_id)
    if problem is not None:
        log.warning("journal record %s proves nothing: %s", key, redact(problem))
        return None
    return data


def finished_steps(registry: Registry, run_id: str, model_id: str) -> dict[str, dict[str, Any]]:
    """The sound journal records of run ``run_id`` for ``model_id``, by step name (unsound ones are left out)."""
    out: dict[str, dict[str, Any]] = {}
    for step in RECORD_FIELDS:
        record = read_record(registry, run_id, step, model_id)
        if record is not None:
            out[step] = record
    return out


def unfinished_step(journal: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The first train step the journal lacks (``promote`` only if evaluate decided to promote); None if all finished."""
    for step in TRAIN_STEPS:
        if step == "promote" and journal.get("evaluate", {}).get("promote") is not True:
            return None
        if step not in journal:
            return step
    return None
