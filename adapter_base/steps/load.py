"""``load``: the run's checks, then resolve a model version and load it with the adapter (digests verified),
before the heavy steps start.

A train run is checked first (``flows.preflight.check_train_run``: metric, threshold, subsets
and test filter with annotated items, labels): a refused run journals ``checks`` and leaves
the model untouched (``finalize`` reads it). A prediction run needs a trained version unless
the adapter has ``PREDICTS_UNTRAINED``.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any, Mapping

from ..entities import Model
from ..errors import NotFoundError, ValidationError
from ..flows.preflight import check_train_run, require_trained
from ..loading import load_adapter_class, make_adapter
from ..registry import Registry
from .shared import marks_failed
from .journal import CHECKS, record_step
from .model_ref import ModelRef

log = logging.getLogger(__name__)


def load(
    adapter_path: str,
    model: str,
    *,
    store_uri: str = "",
    configuration: Mapping[str, Any] | None = None,
    run_id: str = "",
    record_failures: bool = True,
    alias: str = "",
    dataset: str = "",
    test_filters: Mapping[str, Any] | None = None,
    metric: str = "",
    threshold: float | None = None,
) -> ModelRef:
    """Load the version ``alias`` points at (e.g. ``production``; ``""``: the current one); returns its reference.

    ``record_failures``: mark the model ``failed`` if loading fails, and journal the step
    (training runs do; a prediction run does not change the model's status).
    ``dataset``, ``test_filters``, ``metric``, ``threshold``: a train run's, checked before anything
    changes (``metric`` empty: no checks, as pipelines compiled before them pass).
    """
    with Registry.open(store_uri or None) as registry:
        entity = registry.get_model(model)
        if record_failures and metric:
            check_run(registry, entity, run_id, dataset or entity.dataset_id or "", test_filters, metric, threshold)
        elif not record_failures and not alias:
            require_trained(load_adapter_class(adapter_path), entity)
        guard = marks_failed(registry, entity, run_id or "-", "load") if record_failures else nullcontext()
        with guard:
            version = None
            if alias:
                if alias not in entity.aliases:
                    raise ValidationError("Model", "aliases", f"model {entity.name!r} has no alias {alias!r} (has: {', '.join(entity.aliases) or 'none'})")
                version = int(entity.aliases[alias])
            adapter = make_adapter(registry, adapter_path, configuration=configuration)
            path = adapter.load_from_model(entity, version=version)
            loaded = adapter.bound_model
            assert loaded is not None
            log.info("loaded %s v%d from %s (%s)", loaded.name, loaded.version, registry.store.uri, path)
            if record_failures:
                record_step(registry, run_id, "load", model_id=loaded.id, version=loaded.version)
            return ModelRef.of(loaded, registry.store.uri, adapter=adapter_path, alias=alias)


def check_run(
    registry: Registry, model: Model, run_id: str, dataset: str, test_filters: Mapping[str, Any] | None, metric: str, threshold: float | None
) -> None:
    """A train run's checks; a refusal is journaled as ``checks`` (so ``finalize`` leaves the model alone) and raised."""
    try:
        if not dataset:
            raise ValidationError("train", "dataset", f"model {model.name!r} names no dataset to train on; pass one")
        check_train_run(registry, model, registry.get_dataset(dataset), test_filters, metric, threshold)
    except (ValidationError, NotFoundError) as exc:
        record_step(registry, run_id, CHECKS, model_id=model.id, passed=False, reason=str(exc))
        log.error("run refused before any work, model %s left as it is: %s", model.name, exc)
        raise
