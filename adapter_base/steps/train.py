"""``train``: train from the loaded version and stage the result under the run id (no new version yet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..flows.train import stage_training
from ..loading import make_adapter
from ..metrics import json_safe
from ..registry import Registry
from .shared import check_version, marks_failed
from .journal import record_step
from .model_ref import ModelRef


@dataclass(frozen=True)
class Staged:
    """A staged training result (``ref.staged``: ``commit`` makes it a version) and its last epoch's metrics."""

    ref: ModelRef
    training: dict[str, Any]


def train(
    adapter_path: str,
    base: ModelRef,
    run_id: str,
    *,
    dataset: str = "",
    store_uri: str = "",
    configuration: Mapping[str, Any] | None = None,
) -> Staged:
    """Train from ``base`` (which must still be the current version) and stage the result under ``run_id``."""
    with Registry.open(store_uri or None) as registry:
        current = registry.get_model(base.model_id)
        with marks_failed(registry, current, run_id, "train", base=base.version):
            check_version(current, base, "train")
            adapter = make_adapter(registry, adapter_path, configuration=configuration)
            trained = stage_training(adapter, current, run_id, dataset=dataset or None)
            training = json_safe(trained.metrics.get("training", {}))
            # commit applies these with the version: a run whose commit is refused leaves the model's record as it is
            record_step(
                registry, run_id, "train", model_id=trained.id, base_version=base.version, configuration=dict(trained.configuration), training=training
            )
            ref = ModelRef(model_id=trained.id, model_name=trained.name, version=base.version, store_uri=registry.store.uri, run_id=run_id, staged=True)
            return Staged(ref=ref, training=training)
