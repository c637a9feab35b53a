"""``commit``: make a staged training result the model's next version (status ``trained``).

Compare-and-swap on the base version: the result of a run that trained from version N
becomes version N+1 only while N is still the model's current version and no other
writer is making N+1 (``Registry.commit_staged``). Otherwise the commit is refused with
``VersionConflictError`` naming both versions, and the model keeps the newer version and
its status (the run journals ``superseded``).
"""

from __future__ import annotations

import logging

from ..errors import ValidationError
from ..registry import Registry, layout
from .journal import read_record, record_step
from .model_ref import ModelRef
from .shared import marks_failed

log = logging.getLogger(__name__)


def commit(staged: ModelRef, *, store_uri: str = "") -> ModelRef:
    """Commit the result ``train`` staged under ``staged.run_id`` (trained from ``staged.version``); returns the new version's reference."""
    if not staged.staged or not staged.run_id:
        raise ValidationError("commit", "staged_model", f"expected a staged training result with a run id, got {staged}")
    run_id, base = staged.run_id, staged.version
    with Registry.open(store_uri or None) as registry:
        current = registry.get_model(staged.model_id)
        with marks_failed(registry, current, run_id, "commit", base=base):
            trained = read_record(registry, run_id, "train", current.id)
            if trained is None or trained["base_version"] != base:
                raise ValidationError(
                    "commit", "staged_model",
                    f"run {run_id} has no sound journal record of training model {current.name!r} from version {base} "
                    f"({layout.step_record(run_id, 'train')}): nothing to commit",
                )
            saved = registry.commit_staged(
                current, run_id, base_version=base, status="trained", status_message=None,
                configuration=trained["configuration"], metrics={**current.metrics, "training": trained["training"]},
            )
            log.info("committed %s as version %d (trained from version %d)", saved.name, saved.version, base)
            record_step(registry, run_id, "commit", model_id=saved.id, version=saved.version, base_version=base)
            return ModelRef.of(saved, registry.store.uri, base_version=base, run_id=run_id)
