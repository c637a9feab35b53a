"""``promote``: point an alias (``production``) at the version this run evaluated; the pipeline runs it only behind evaluate's gate.

The version is the one the run's ``evaluate`` step recorded deciding to promote (its
journal record), never whatever is latest: a newer version another run committed
meanwhile is not promoted by this run, and an alias already on a newer version stays there.
"""

from __future__ import annotations

import logging

from ..errors import ValidationError, VersionConflictError
from ..registry import Registry, layout
from .journal import read_record, record_step
from .model_ref import ModelRef
from .shared import marks_failed

log = logging.getLogger(__name__)


def promote(ref: ModelRef, alias: str, *, store_uri: str = "", run_id: str = "") -> dict[str, object]:
    """Point ``alias`` at ``ref.version``, which run ``run_id``'s evaluate step decided to promote; returns the model's aliases.

    Without a run id (``""``, ``-``) nothing is checked against a journal.
    """
    with Registry.open(store_uri or None) as registry:
        current = registry.get_model(ref.model_id)
        with marks_failed(registry, current, run_id or "-", "promote", base=ref.version):
            reason = ""
            if run_id and run_id != "-":
                decided = read_record(registry, run_id, "evaluate", current.id)
                if decided is None or decided["promote"] is not True:
                    raise ValidationError(
                        "promote", "trained_model",
                        f"run {run_id} has no sound journal record of evaluate deciding to promote {current.name!r} "
                        f"({layout.step_record(run_id, 'evaluate')}): not promoted",
                    )
                if decided["version"] != ref.version:
                    raise VersionConflictError(
                        f"promote: run {run_id} evaluated version {decided['version']} of {current.name!r}, not version {ref.version}: not promoted"
                    )
                reason = str(decided.get("reason", ""))
            try:
                updated = registry.set_alias(current, alias, ref.version, forward_only=True)
            except VersionConflictError as exc:  # another run promoted a newer version meanwhile
                raise VersionConflictError(f"promote: {exc} (version {ref.version} is the one this run evaluated)") from None
            log.info("promoted %s v%d to %r (%s)", updated.name, ref.version, alias, reason)
            record_step(registry, run_id, "promote", model_id=updated.id, alias=alias, version=ref.version)
            return {"model_id": updated.id, "alias": alias, "version": ref.version, "aliases": dict(updated.aliases)}
