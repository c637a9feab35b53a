"""``predict_shard``: predict one shard's items with the version the ``load`` step resolved (streaming)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from .. import sharding
from ..errors import ConflictError, ValidationError
from ..loading import make_adapter
from ..prediction import EMBED, PREDICT, run_predictions
from ..registry import Registry, layout
from .model_ref import ModelRef, manifest_digest

log = logging.getLogger(__name__)

#: What a shard run can do with its items.
TASKS = {"predict": PREDICT, "embed": EMBED}


def predict_shard(
    adapter_path: str,
    ref: ModelRef,
    index: Mapping[str, Any],
    shard: int,
    *,
    store_uri: str = "",
    configuration: Mapping[str, Any] | None = None,
    batch_size: int = 0,
    resume: bool = False,
    task: str = "predict",
) -> dict[str, Any]:
    """Predict shard ``shard`` of ``index`` (``task="embed"``: store ``embed``'s vectors instead); returns its
    report (also written to the store).

    Every shard loads ``ref.version`` (checked against ``ref.digest``), even if a newer
    version lands meanwhile. Items that fail are in the report; the step itself fails only
    when the listing or the model load fails, so a retry can help. Every attempt after the
    first (a retried pod, a retried run) skips the items this shard's run id already
    predicted, whatever ``resume`` says; ``resume`` also skips items any run predicted with
    this version.
    """
    if task not in TASKS:
        raise ValidationError("predict_shard", "task", f"must be one of {', '.join(TASKS)}; got {task!r}")
    shard = int(shard)
    run_id = index["run_id"]
    with Registry.open(store_uri or None) as registry:
        ids = sharding.read_shard(registry.store, index, shard)
        attempt = sharding.start_shard_attempt(registry.store, run_id, shard)
        if attempt > 1:
            log.info("shard %d: attempt %d: skipping the items earlier attempts of this run predicted", shard, attempt)
        adapter = make_adapter(registry, adapter_path, configuration=configuration)
        adapter.load_from_model(ref.model_id, version=ref.version or None)
        loaded = adapter.bound_model
        assert loaded is not None
        if ref.digest and manifest_digest(loaded.artifacts) != ref.digest:
            raise ConflictError(f"model {loaded.name!r} version {loaded.version} no longer has the files the load step saw")
        report = run_predictions(
            adapter,
            sharding.iter_shard_items(registry, index["dataset_id"], ids, layout.shard_records(run_id, shard)),
            batch_size=batch_size or None,
            resume=resume,
            resume_run=attempt > 1,
            run_id=sharding.shard_run_id(run_id, shard),
            save_report=False,
            task=TASKS[task],
            dataset_id=index["dataset_id"],
        )
        out = {**report.to_dict(), "shard": shard, "attempt": attempt, "dataset_id": index["dataset_id"], "pipeline_run_id": run_id}
        registry.store.put_json(layout.shard_report(run_id, shard), out)
        log.info("shard %d: attempt %d done (its failures are listed above and in the merged summary)", shard, attempt)
        if report.fatal_error:
            raise RuntimeError(f"shard {shard} aborted: {report.fatal_error}")
        return out
