"""``promote``: point an alias (``production``) at a version; the pipeline runs it only behind evaluate's gate."""

from __future__ import annotations

import logging

from ..registry import Registry
from .shared import marks_failed
from .journal import record_step
from .model_ref import ModelRef

log = logging.getLogger(__name__)


def promote(ref: ModelRef, alias: str, *, store_uri: str = "", run_id: str = "") -> dict[str, object]:
    """Point ``alias`` at ``ref.version`` (the log says the evaluate step's reason); returns the model's aliases."""
    with Registry.open(store_uri or None) as registry:
        current = registry.get_model(ref.model_id)
        with marks_failed(registry, current, run_id or "-", "promote"):
            updated = registry.set_alias(current, alias, ref.version)
            reason = (current.metrics.get("promotion") or {}).get("reason", "")
            log.info("promoted %s v%d to %r (%s)", updated.name, ref.version, alias, reason)
            record_step(registry, run_id, "promote", model_id=updated.id, alias=alias, version=ref.version)
            return {"model_id": updated.id, "alias": alias, "version": ref.version, "aliases": dict(updated.aliases)}
