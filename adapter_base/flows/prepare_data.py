"""``prepare_data``: download a model's training subsets to the documented local layout.

    <root>/datasets/<dataset.id>/<subset>/items/<item.path>
    <root>/datasets/<dataset.id>/<subset>/json/<item.path>.json    {"item": ..., "annotations": [...]}
    <root>/output/

``<root>`` defaults to ``<home>/model_data/<model.id>_<model.name>/<timestamp>``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..concurrency import ordered_map
from ..entities import Dataset, Item
from ..errors import ValidationError
from ..registry.artifacts import safe_destination
from ._common import fresh_dir, resolve_dataset, resolve_model, timestamp

if TYPE_CHECKING:
    from ..adapter import BaseModelAdapter

log = logging.getLogger(__name__)


def default_root(adapter: "BaseModelAdapter") -> Path:
    """A new timestamped directory under ``<home>/model_data/<model.id>_<model.name>/``."""
    model = adapter.model_entity
    assert model is not None
    return adapter.home / "model_data" / f"{model.id}_{model.name}" / timestamp()


def _convert(adapter: "BaseModelAdapter", data_path: str, **kwargs: Any) -> None:
    """Call the adapter's conversion hook; an adapter that overrides only ``convert_from_dtlpy`` gets that."""
    from ..adapter import BaseModelAdapter

    cls = type(adapter)
    if cls.convert_from_dtlpy is not BaseModelAdapter.convert_from_dtlpy and cls.convert_from_dataset is BaseModelAdapter.convert_from_dataset:
        adapter.convert_from_dtlpy(data_path, **kwargs)
    else:
        adapter.convert_from_dataset(data_path, **kwargs)


def prepare_data(
    adapter: "BaseModelAdapter",
    dataset: Dataset | str,
    *,
    root_path: str | None = None,
    data_path: str | None = None,
    output_path: str | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> tuple[Path, Path]:
    """Download each subset named in the model (items with ground truth only), then ``convert_from_dataset``.

    Only ground truth is written: annotations carrying model info never are. A subset
    with no annotated item is an error naming the subset and its filter.
    """
    model = resolve_model(adapter, None)
    ds = resolve_dataset(adapter, dataset)
    if not model.subsets:
        raise ValidationError("Model", "subsets", f"model {model.name!r} names no subsets to train on (e.g. {{'train': {{'subset': 'train'}}}})")
    root = Path(root_path) if root_path else default_root(adapter)
    data_dir = Path(data_path) if data_path else root / "datasets" / ds.id
    out_dir = Path(output_path) if output_path else root / "output"
    fresh_dir(data_dir, overwrite)
    fresh_dir(out_dir, overwrite)
    registry = adapter.registry

    for subset in model.subsets:
        filters = model.subset_filters(subset)
        subset_dir = data_dir / subset

        def fetch(item: Item, subset_dir: Path = subset_dir) -> bool:
            gt = registry.get_ground_truth(item)
            if not len(gt):
                return False
            registry.download_item(item, safe_destination(subset_dir / "items", item.path))
            record = {"item": item.to_dict(), "annotations": [a.to_dict() for a in gt]}
            dest = safe_destination(subset_dir / "json", item.path + ".json")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(json.dumps(record, allow_nan=False))
            return True

        count = 0
        for item, result in ordered_map(fetch, registry.iter_items(ds, filters), pool=registry.pool, window=4 * registry.io_workers):
            if isinstance(result, BaseException):
                raise ValidationError(f"item {item.id} ({item.path})", subset, f"cannot be prepared: {result}") from result
            count += bool(result)
        if count == 0:
            raise ValidationError(
                "Model", f"subsets.{subset}", f"subset {subset!r} of dataset {ds.name!r} has no annotated items (filter {filters.to_dict()})"
            )
        log.info("prepared subset %s: %d item(s) -> %s", subset, count, subset_dir)

    _convert(adapter, str(data_dir), **kwargs)
    return data_dir, out_dir
