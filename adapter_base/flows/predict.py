"""``predict_items`` / ``predict_dataset``: the wrapper functions over the prediction engine.

The engine (stages, policies, writer, report) is ``adapter_base.prediction``; these turn
items or a dataset into the ``(item id, Item or error)`` stream it predicts.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..entities import Dataset, Filters, Item
from ..hooks import AdapterHooks
from ..prediction import PredictionReport, run_predictions
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
    """Predict every item of ``dataset`` matching ``filters``, streaming the listing.

    ``kind`` (``predict`` or ``evaluate``), the dataset and the filters are recorded in the run's report."""
    ds = resolve_dataset(adapter, dataset)
    shown = {k: v for k, v in Filters.coerce(filters).to_dict().items() if k != "item_ids" and v not in (None, {}, [])}
    about = {"kind": kind, "dataset_id": ds.id, "dataset_name": ds.name, "filters": shown}
    return run_predictions(adapter, adapter.registry.iter_item_results(ds, filters), batch_size=batch_size, about=about, **kwargs)
