"""What a streaming run does with each batch: ``PREDICT`` (prediction sets) or ``EMBED`` (feature vectors).

The engine (prepare, call, write, report, resume) is the same for both; a ``Task`` names the
hook it calls, how one result becomes the item's record, where records are stored and how a
run finds the record an earlier run left (``--resume``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..entities import Item, Model
from ..registry import Registry, layout
from .contract import embedding_of, stamp


@dataclass(frozen=True)
class Task:
    """One kind of streaming run over items."""

    #: The adapter hook called with each batch, also the report's stage name for its failures.
    hook: str
    #: ``(model, run_id, item, result) -> record``: checks one result and makes the item's record.
    record: Callable[[Model, str, Item, Any], Any]
    #: ``(registry, record, dataset_id)``: stores a record, replacing the earlier one of its model version (embedding: of its model).
    put: Callable[[Registry, Any, str], None]
    #: ``(record, dataset_id) -> key``: where ``put`` stores it, as a JSON document (what a writing process stores there).
    key: Callable[[Any, str], str]
    #: ``(registry, item, model) -> record or None``: what an earlier run stored for this model version
    #: (prediction sets are kept per version; an embedding per model, the latest run's).
    get: Callable[[Registry, Item, Model], Any]


PREDICT = Task(
    hook="predict",
    record=stamp,
    put=lambda registry, record, dataset_id: registry.put_predictions(record, dataset_id, validated=True),
    key=lambda record, dataset_id: layout.predictions(dataset_id, record.item_id, record.model_id, record.model_version),
    get=lambda registry, item, model: registry.get_predictions(item, model.id, model.version),
)

EMBED = Task(
    hook="embed",
    record=embedding_of,
    put=lambda registry, record, dataset_id: registry.put_embedding(record, dataset_id, validated=True),
    key=lambda record, dataset_id: layout.embedding(dataset_id, record.item_id, record.model_id),
    get=lambda registry, item, model: registry.get_embedding(item, model.id),
)
