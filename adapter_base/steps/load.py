"""``load``: resolve a model version and load it with the adapter (digests verified) before the heavy steps start."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any, Mapping

from ..errors import ValidationError
from ..loading import make_adapter
from ..registry import Registry
from .shared import marks_failed
from .journal import record_step
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
) -> ModelRef:
    """Load the version ``alias`` points at (e.g. ``production``; ``""``: the current one); returns its reference.

    ``record_failures``: mark the model ``failed`` if loading fails, and journal the step
    (training runs do; a prediction run does not change the model's status).
    """
    with Registry.open(store_uri or None) as registry:
        entity = registry.get_model(model)
        guard = marks_failed(registry, entity, run_id or "-", "load") if record_failures else nullcontext()
        with guard:
            version = None
            if alias:
                if alias not in entity.aliases:
                    raise ValidationError("Model", "aliases", f"model {entity.name!r} has no alias {alias!r} (has: {', '.join(entity.aliases) or 'none'})")
                version = int(entity.aliases[alias])
            adapter = make_adapter(registry, adapter_path, configuration=configuration)
            path = adapter.load_from_model(entity, version=version)
            loaded = adapter.model_entity
            assert loaded is not None
            log.info("loaded %s v%d from %s (%s)", loaded.name, loaded.version, registry.store.uri, path)
            if record_failures:
                record_step(registry, run_id, "load", model_id=loaded.id, version=loaded.version)
            return ModelRef.of(loaded, registry.store.uri, adapter=adapter_path, alias=alias)
