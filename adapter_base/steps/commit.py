"""``commit``: make a staged training result the model's next version (status ``trained``)."""

from __future__ import annotations

import logging

from ..errors import ValidationError
from ..registry import Registry
from .shared import marks_failed
from .journal import record_step
from .model_ref import ModelRef

log = logging.getLogger(__name__)


def commit(staged: ModelRef, *, store_uri: str = "") -> ModelRef:
    """Commit the result ``train`` staged under ``staged.run_id``; returns the new version's reference."""
    if not staged.staged or not staged.run_id:
        raise ValidationError("commit", "staged_model", f"expected a staged training result with a run id, got {staged}")
    run_id = staged.run_id
    with Registry.open(store_uri or None) as registry:
        current = registry.get_model(staged.model_id)
        with marks_failed(registry, current, run_id, "commit"):
            saved = registry.commit_staged(current, run_id, status="trained", status_message=None)
            log.info("committed %s as version %d", saved.name, saved.version)
            record_step(registry, run_id, "commit", model_id=saved.id, version=saved.version)
            return ModelRef.of(saved, registry.store.uri, base_version=staged.version, run_id=run_id)
