"""``predict_items`` / ``predict_dataset`` (and ``embed_items`` / ``embed_dataset``): the wrapper functions over the prediction engine.

The engine (stages, policies, writer, report) is ``adapter_base.prediction``; these turn
items or a dataset into the ``(item id, Item or error)`` stream it predicts.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..entities import Dataset, Filters, Item
from ..hooks import AdapterHooks
from ..prediction import EMBED, PredictionReport, run_predictions
from ._common import resolve_dataset


def predict_items(adapter: AdapterHooks, items: Iterable[Item], *, batch_size: int | None = None, **kwargs: Any) -> PredictionReport:
    """Predict the given items (any iterable, consumed lazily)."""
    source = ((getattr(it, "id", repr(it)), it) for it in items)
    return run_predictions(adapter, source, batch_size=batch_size, **kwargs)


def predict_dataset(
    adapter: AdapterHooks,
    dataset: Dataset | str,
    *,
    filters: Filters | Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    kind: str = "predict",
    **kwargs: Any,
) -> PredictionReport:
    """Predict every item of ``dataset`` matching ``filters``, streaming the listing; the sets are stored under ``dataset``.

    ``kind`` (``predict``, ``evaluate`` or ``embed``), the dataset and the filters are recorded in the run's report."""
    ds = resolve_dataset(adapter, dataset)
    shown = {k: v for k, v in Filters.coerce(filters).to_dict().items() if k != "item_ids" and v not in (None, {}, [])}
    about = {"kind": kind, "dataset_id": ds.id, "dataset_name": ds.name, "filters": shown}
    return run_predictions(adapter, adapter.registry.iter_item_results(ds, filters), batch_size=batch_size, dataset_id=ds.id, about=about, **kwargs)


def embed_items(adapter: AdapterHooks, items: Iterable[Item], *, batch_size: int | None = None, **kwargs: Any) -> PredictionReport:
    """Store ``embed``'s feature vector of each given item (streaming, resumable, per-item report, as ``predict_items``)."""
    return predict_items(adapter, items, batch_size=batch_size, task=EMBED, about={"kind": "embed"}, **kwargs)


def embed_dataset(
    adapter: AdapterHooks,
    dataset: Dataset | str,
    *,
    filters: Filters | Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    **kwargs: Any,
) -> PredictionReport:
    """Store ``embed``'s feature vector of every item of ``dataset`` matching ``filters``."""
    return predict_dataset(adapter, dataset, filters=filters, batch_size=batch_size, task=EMBED, kind="embed", **kwargs)
