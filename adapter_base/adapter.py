"""``BaseModelAdapter``: the user's hooks plus the wrapper functions that drive them.

A user subclasses it and writes the user functions (``load``, ``save``, ``train``,
``predict``, ``prepare_item_func``, optionally ``convert_from_dataset``), declared in
``adapter_base.hooks``. The wrapper functions (``load_from_model``, ``save_to_model``,
``prepare_data``, ``train_model``, ``predict_items``, ``predict_dataset``,
``embed_items``, ``embed_dataset``, ``evaluate_model``) live one per module in ``adapter_base.flows`` and are exposed here
as methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from .entities import Dataset, Filters, Item, Model
from .flows.evaluate import EvaluationResult, evaluate_model
from .flows.load import load_from_model
from .flows.predict import embed_dataset, embed_items, predict_dataset, predict_items
from .flows.prepare_data import prepare_data
from .flows.save import save_to_model
from .flows.train import train_model
from .hooks import AdapterHooks
from .prediction import PredictionReport
from .registry import Registry


class BaseModelAdapter(AdapterHooks):
    """Base class of every model adapter: the user's hooks (``AdapterHooks``) plus the wrapper functions.

    ``BaseModelAdapter(model)`` loads ``model`` right away (``load_from_model``).
    """

    def __init__(
        self,
        model_entity: Model | None = None,
        *,
        registry: Registry | None = None,
        store: str | None = None,
        configuration: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(registry=registry, store=store, configuration=configuration)
        if model_entity is not None:
            self.load_from_model(model_entity)

    @classmethod
    def create(cls, registry: Registry, configuration: Mapping[str, Any] | None = None) -> "BaseModelAdapter":
        """An unloaded instance over ``registry`` (how the CLI and the pipeline steps build adapters)."""
        return cls(registry=registry, configuration=configuration)

    # --- wrapper functions ------------------------------------------------------------

    def load_from_model(
        self, model: Model | str | None = None, local_path: str | None = None, overwrite: bool = True, **kwargs: Any
    ) -> Path:
        """Download the model's artifacts, verify digests, and call ``load``."""
        return load_from_model(self, model, local_path=local_path, overwrite=overwrite, **kwargs)

    def save_to_model(self, local_path: str | None = None, cleanup: bool = False, replace: bool = True, **kwargs: Any) -> Model:
        """Call ``save``, upload the files as the model's next version, persist the configuration."""
        return save_to_model(self, local_path=local_path, cleanup=cleanup, replace=replace, **kwargs)

    def prepare_data(
        self,
        dataset: Dataset | str,
        root_path: str | None = None,
        data_path: str | None = None,
        output_path: str | None = None,
        overwrite: bool = False,
        **kwargs: Any,
    ) -> tuple[Path, Path]:
        """Download every subset named in the model to the training layout; returns (data_path, output_path)."""
        return prepare_data(self, dataset, root_path=root_path, data_path=data_path, output_path=output_path, overwrite=overwrite, **kwargs)

    def train_model(self, model: Model | str, cleanup: bool = False, progress: Any = None, **kwargs: Any) -> Model:
        """Train the model on its subsets and save the result as a new version."""
        return train_model(self, model, cleanup=cleanup, progress=progress, **kwargs)

    def predict_items(self, items: Iterable[Item], batch_size: int | None = None, **kwargs: Any) -> PredictionReport:
        """Predict items in a stream of batches and write the results; returns the per-item report."""
        return predict_items(self, items, batch_size=batch_size, **kwargs)

    def predict_dataset(
        self, dataset: Dataset | str, filters: Filters | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> PredictionReport:
        """Predict every item of the dataset matching ``filters``; returns the per-item report."""
        return predict_dataset(self, dataset, filters=filters, **kwargs)

    def embed_items(self, items: Iterable[Item], batch_size: int | None = None, **kwargs: Any) -> PredictionReport:
        """Store ``embed``'s feature vector of each item (streaming, resumable); returns the per-item report."""
        return embed_items(self, items, batch_size=batch_size, **kwargs)

    def embed_dataset(
        self, dataset: Dataset | str, filters: Filters | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> PredictionReport:
        """Store ``embed``'s feature vector of every item of the dataset matching ``filters``; returns the report."""
        return embed_dataset(self, dataset, filters=filters, **kwargs)

    def evaluate_model(
        self, model: Model | str, dataset: Dataset | str, filters: Filters | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> EvaluationResult:
        """Predict the subset, score it against ground truth, store metrics and a report."""
        return evaluate_model(self, model, dataset, filters=filters, **kwargs)
