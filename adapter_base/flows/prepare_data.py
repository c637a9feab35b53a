"""``prepare_data``: download a model's training subsets to the documented local layout.

    <root>/datasets/<dataset.id>/<subset>/items/<item.path>
    <root>/datasets/<dataset.id>/<subset>/json/<item.path>.json    {"item": ..., "annotations": [...]}

(the JSON records are the adapter's ``prepared_record``: the dtlpy layer writes dtlpy's).
    <root>/output/

``<root>`` defaults to ``<home>/model_data/<model.id>_<model.name>/<timestamp>``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..concurrency import ordered_map
from ..entities import Dataset, Item
from ..errors import ValidationError
from ..hook_calls import call_hook
from ..hooks import AdapterHooks
from ..local_dirs import safe_join, user_dir
from ._common import resolve_dataset, resolve_model, timestamp


log = logging.getLogger(__name__)


def default_root(adapter: AdapterHooks) -> Path:
    """A new timestamped directory under ``<home>/model_data/<model.id>_<model.name>/``."""
    model = adapter.bound_model
    assert model is not None
    return safe_join(adapter.home, "model_data", f"{model.id}_{model.name}", timestamp(), what="Model")


def _convert(adapter: AdapterHooks, data_path: str, **kwargs: Any) -> None:
    """Call the adapter's conversion hook; an adapter that overrides only ``convert_from_dtlpy`` gets that."""
    cls = type(adapter)
    if cls.convert_from_dtlpy is not AdapterHooks.convert_from_dtlpy and cls.convert_from_dataset is AdapterHooks.convert_from_dataset:
        call_hook(adapter, "convert_from_dtlpy", data_path, **kwargs)
    else:
        call_hook(adapter, "convert_from_dataset", data_path, **kwargs)


def prepare_data(
    adapter: AdapterHooks,
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
    # Caller-named folders are emptied only if the framework made them (never a project folder).
    data_dir = user_dir(data_path or safe_join(root, "datasets", ds.id, what="Dataset.id"), overwrite, ds.id)
    out_dir = user_dir(output_path or root / "output", overwrite, "output")
    registry = adapter.registry

    for subset in model.subsets:
        filters = model.subset_filters(subset)
        subset_dir = safe_join(data_dir, subset, what="Model.subsets")

        def fetch(item: Item, subset_dir: Path = subset_dir) -> bool:
            gt = registry.get_ground_truth(item)
            if not len(gt):
                return False
            registry.download_item(item, safe_join(subset_dir / "items", item.path, what="Item.path"))
            rel, record = adapter.prepared_record(item, gt)
            dest = safe_join(subset_dir / "json", rel, what="Item.path")
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
