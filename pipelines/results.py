"""What a finished pipeline run left, read back from the store (every backend's local run reports it)."""

from __future__ import annotations

from typing import Any


def model_state(store_uri: str, model: str) -> dict[str, Any]:
    """The model's version, status, aliases and latest evaluation, from the store."""
    from adapter_base.registry import Registry

    with Registry.open(store_uri or None) as registry:
        m = registry.get_model(model)
        return {
            "model_id": m.id,
            "model_name": m.name,
            "version": m.version,
            "status": m.status,
            "status_message": m.status_message,
            "aliases": dict(m.aliases),
            "evaluation": m.metrics.get("evaluation"),
            "promotion": m.metrics.get("promotion"),
        }
