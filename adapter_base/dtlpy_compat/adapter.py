"""``dl.BaseModelAdapter``: adapter_base's ``BaseModelAdapter`` spoken with dtlpy's names and call shapes.

What differs from ours, and only that: ``__init__(model_entity=None)`` (the registry comes
from ``create``); ``model_entity`` is a ``dl.Model`` view; ``self.device`` can be assigned
(even before ``super().__init__``); ``prepare_data`` returns ``(root_path, data_path,
output_path)`` and writes dtlpy's JSON; ``prepare_item_func`` gets a ``dl.Item``;
``load_from_model(model_entity=...)``; files staged with ``model.artifacts.upload`` join
the next saved version.
"""

from __future__ import annotations

import functools
import inspect
import threading
from pathlib import Path
from typing import Any, Mapping

from ..adapter import BaseModelAdapter as CoreAdapter
from ..config import resolve_device
from ..errors import AdapterError
from ..entities import AnnotationCollection as CoreCollection
from ..entities import Dataset as CoreDataset
from ..entities import Item as CoreItem
from ..entities import Model as CoreModel
from ..flows.prepare_data import default_root
from ..flows.prepare_data import prepare_data as prepare_data_flow
from ..registry import Registry
from . import records
from .entities import Dataset, Item, Model, add_staged_artifacts

__all__ = ["BaseModelAdapter"]

#: What ``create`` hands to ``__init__`` of an adapter whose own ``__init__`` takes only ``model_entity``.
_pending = threading.local()


def _record(value: Any) -> Any:
    """Our record behind a dtlpy view (or the value itself)."""
    return value.record if isinstance(value, (Model, Dataset, Item)) else value


class BaseModelAdapter(CoreAdapter):
    """Subclass it as in dtlpy: ``class ModelAdapter(dl.BaseModelAdapter)`` with ``load``, ``save``, ``train``, ``predict``."""

    def __init__(self, model_entity: Any = None, **kwargs: Any) -> None:
        given = getattr(_pending, "kwargs", None) or {}
        _pending.kwargs = None
        super().__init__(None, **{**given, **kwargs})
        if model_entity is not None:
            self.load_from_model(model_entity)

    @classmethod
    def create(cls, registry: Registry, configuration: Mapping[str, Any] | None = None) -> "BaseModelAdapter":
        """An instance over ``registry``, built the way dtlpy builds one: ``cls(model_entity)`` (here ``None``)."""
        _pending.kwargs = {"registry": registry, "configuration": dict(configuration or {}) or None}
        try:
            try:
                inspect.signature(cls).bind(None)
            except TypeError:
                return cls()
            return cls(None)
        finally:
            _pending.kwargs = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The user's own hooks, given dtlpy's arguments: a dl.Item to prepare_item_func; save's
        # folder also gets the files staged with model.artifacts.upload.
        if "prepare_item_func" in cls.__dict__:
            cls.prepare_item_func = _with_item_view(cls.__dict__["prepare_item_func"])  # type: ignore[method-assign]
        if "save" in cls.__dict__:
            cls.save = _with_staged_artifacts(cls.__dict__["save"])  # type: ignore[method-assign]

    # --- the model, as a dl.Model ------------------------------------------------------

    @property  # type: ignore[override]
    def model_entity(self) -> Model | None:
        record = self.bound_model
        if record is None:
            return None
        view = self.__dict__.get("_dtlpy_view")
        if view is None or view.record is not record:
            view = Model(record, self)
            self.__dict__["_dtlpy_view"] = view
        return view

    @model_entity.setter
    def model_entity(self, value: Any) -> None:
        record = _record(value)
        if record is not None and record is not self.bound_model:
            self.bind_model(record)

    # --- device: assignable, as dtlpy adapters do --------------------------------------

    @property  # type: ignore[override]
    def device(self) -> Any:
        assigned = self.__dict__.get("_dtlpy_device")
        return assigned if assigned is not None else resolve_device(self.configuration.get("device"))

    @device.setter
    def device(self, value: Any) -> None:
        self.__dict__["_dtlpy_device"] = value

    # --- dtlpy's call shapes ------------------------------------------------------------

    def prepared_record(self, item: CoreItem, ground_truth: CoreCollection) -> tuple[str, dict[str, Any]]:
        """dtlpy's JSON: ``json/<item path with .json>``."""
        return records.json_path(item), records.item_json(item, ground_truth)

    def load_from_model(self, model_entity: Any = None, local_path: str | None = None, overwrite: bool = True, **kwargs: Any) -> Path:  # type: ignore[override]
        return super().load_from_model(_record(model_entity), local_path=local_path, overwrite=overwrite, **kwargs)

    def prepare_data(  # type: ignore[override]
        self,
        dataset: Any,
        root_path: str | None = None,
        data_path: str | None = None,
        output_path: str | None = None,
        overwrite: bool = False,
        **kwargs: Any,
    ) -> tuple[str, str, str]:
        """Download the model's subsets as dtlpy lays them out; returns ``(root_path, data_path, output_path)``."""
        ds = _record(dataset)
        root = Path(root_path) if root_path else default_root(self)
        data, out = prepare_data_flow(self, ds if isinstance(ds, (CoreDataset, str)) else str(ds), root_path=str(root), data_path=data_path, output_path=output_path, overwrite=overwrite, **kwargs)
        return str(root), str(data), str(out)

    def train_model(self, model: Any, cleanup: bool = False, progress: Any = None, **kwargs: Any) -> CoreModel:  # type: ignore[override]
        return super().train_model(_record(model), cleanup=cleanup, progress=progress, **kwargs)

    def evaluate_model(self, model: Any, dataset: Any, filters: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().evaluate_model(_record(model), _record(dataset), filters=filters, **kwargs)

    def predict_dataset(self, dataset: Any, filters: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().predict_dataset(_record(dataset), filters=filters, **kwargs)

    def predict_items(self, items: Any, batch_size: int | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().predict_items([_record(i) for i in items], batch_size=batch_size, **kwargs)


    def embed_items(self, items: Any, upload_features: bool | None = None, batch_size: int | None = None, progress: Any = None, **kwargs: Any) -> tuple[list[CoreItem], list[list[float]]]:  # type: ignore[override]
        """As dtlpy: ``(items, vectors)`` of the items embedded, stored unless ``upload_features=False``;
        raises after the run if any item failed (the others are kept)."""
        vectors: dict[str, list[float]] = {}
        records = [_record(i) for i in items]
        report = super().embed_items(
            records, batch_size=batch_size, write=upload_features is not False, on_result=lambda item, emb: vectors.__setitem__(item.id, emb.vector), **kwargs
        )
        if not report.ok:
            raise AdapterError(f"Failed to embed all items: {report.summary()}")
        done = [r for r in records if r.id in vectors]
        return done, [vectors[r.id] for r in done]

    def embed_dataset(self, dataset: Any, filters: Any = None, upload_features: bool | None = None, batch_size: int | None = None, progress: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().embed_dataset(_record(dataset), filters=filters, batch_size=batch_size, write=upload_features is not False, **kwargs)


def _with_item_view(func: Any) -> Any:
    @functools.wraps(func)
    def prepare_item_func(self: BaseModelAdapter, item: Any) -> Any:
        return func(self, item if isinstance(item, Item) else Item(item, self))

    return prepare_item_func


def _with_staged_artifacts(func: Any) -> Any:
    @functools.wraps(func)
    def save(self: BaseModelAdapter, local_path: str, **kwargs: Any) -> Any:
        result = func(self, local_path, **kwargs)
        add_staged_artifacts(self, local_path)
        return result

    return save
