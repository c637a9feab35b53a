"""The run journal: ``runs/<run_id>/steps/<step>.json`` records that a train step of that run finished.

Each train step writes its record when it finishes, so the exit step (``finalize``) can
tell what a run did when the backend's final state does not say (``RUNNING``).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ..entities._base import utc_now
from ..errors import NotFoundError, StoreError
from ..metrics import json_safe
from ..registry import Registry, layout

log = logging.getLogger(__name__)

#: The train pipeline's steps in order; ``promote`` runs only when evaluate decided to promote.
TRAIN_STEPS = ("load", "train", "commit", "evaluate", "promote")


def record_step(registry: Registry, run_id: str, step: str, **facts: Any) -> None:
    """Write the journal record of a finished step (``facts`` made strict JSON); no run id (``""``, ``-``): nothing."""
    if run_id and run_id != "-":
        registry.store.put_json(layout.step_record(run_id, step), json_safe({"run_id": run_id, "step": step, "finished_at": utc_now(), **facts}))


def finished_steps(registry: Registry, run_id: str) -> dict[str, dict[str, Any]]:
    """The journal of a run: each finished step's record, by step name."""
    prefix = layout.steps_prefix(run_id)
    out: dict[str, dict[str, Any]] = {}
    for info in registry.store.list(prefix):
        name = info.key[len(prefix):]
        if name.endswith(".json") and "/" not in name:
            try:
                out[name[: -len(".json")]] = registry.store.get_json(info.key)
            except (NotFoundError, StoreError) as exc:  # an unreadable record is no proof the step finished
                log.warning("journal record %s is unreadable: %s", info.key, exc)
    return out


def unfinished_step(journal: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The first train step the journal lacks (``promote`` only if evaluate decided to promote); None if all finished."""
    for step in TRAIN_STEPS:
        if step == "promote" and not journal.get("evaluate", {}).get("promote"):
            return None
        if step not in journal:
            return step
    return None
