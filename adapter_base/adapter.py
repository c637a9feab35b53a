"""``BaseModelAdapter``: the user's hooks, plus the wrapper functions that drive them.

A user subclasses it and writes the user functions (``load``, ``save``, ``train``,
``predict``, ``prepare_item_func``, optionally ``convert_from_dataset``). The wrapper
functions (``load_from_model``, ``save_to_model``, ``prepare_data``, ``train_model``,
``predict_items``, ``predict_dataset``, ``evaluate_model``) live one per module in
``adapter_base.flows`` and are exposed here as methods.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping, Sequence

from .config import FRAMEWORK_DEFAULTS, merge_configuration, resolve_device
from .entities import AnnotationCollection, Dataset, Filters, Item, Model
from .errors import ValidationError
from .media import decode_image, decode_text
from .registry import Registry
from .storage import adapter_home

if TYPE_CHECKING:
    from .flows.evaluate import EvaluationResult
    from .flows.predict import PredictionReport


class BaseModelAdapter:
    """Base class of every model adapter.

    ``DEFAULT_CONFIGURATION`` holds the adapter's defaults; ``self.configuration`` is
    the framework defaults, then those, then ``model.configuration``, merged in that
    order. It is persisted to the model on ``save_to_model``.
    """

    DEFAULT_CONFIGURATION: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        model_entity: Model | None = None,
        *,
        registry: Registry | None = None,
        store: str | None = None,
        configuration: Mapping[str, Any] | None = None,
    ) -> None:
        self.logger = logging.getLogger(f"adapter.{type(self).__name__}")
        self.registry = registry if registry is not None else Registry.open(store)
        self.model: Any = None  # the user's model object, set by ``load``
        self.model_entity: Model | None = None
        self._overrides = dict(configuration or {})
        self.configuration: dict[str, Any] = self._merged_configuration(None)
        if model_entity is not None:
            self.load_from_model(model_entity)

    # --- configuration and device -----------------------------------------------------

    def _merged_configuration(self, model: Model | None) -> dict[str, Any]:
        return merge_configuration(
            FRAMEWORK_DEFAULTS,
            self.DEFAULT_CONFIGURATION,
            model.configuration if model is not None else None,
            self._overrides,
        )

    def bind_model(self, model: Model) -> None:
        """Use ``model`` (its configuration and identity) without downloading artifacts."""
        self.model_entity = model
        self.configuration = self._merged_configuration(model)

    @property
    def device(self) -> str:
        """Where to run: ``configuration["device"]``, or ``cuda`` if available, else ``cpu``."""
        return resolve_device(self.configuration.get("device"))

    @property
    def home(self) -> Path:
        """The local working directory (``$MODEL_ADAPTER_HOME``)."""
        return adapter_home()

    # --- user functions ---------------------------------------------------------------

    def load(self, local_path: str, **kwargs: Any) -> None:
        """Load the model from the files in ``local_path`` into ``self.model``."""
        raise NotImplementedError(f"{type(self).__name__} must implement load(local_path, **kwargs)")

    def save(self, local_path: str, **kwargs: Any) -> None:
        """Write the model's files into ``local_path``."""
        raise NotImplementedError(f"{type(self).__name__} must implement save(local_path, **kwargs) to save or train")

    def train(self, data_path: str, output_path: str, **kwargs: Any) -> None:
        """Train on the layout under ``data_path``; write outputs to ``output_path``.

        ``kwargs`` carries ``on_epoch_end_callback(i_epoch, n_epochs, metrics=None)``,
        ``checkpoint_dir`` (save checkpoints there; they are kept in the store) and
        ``resume_checkpoint`` (the checkpoint directory of an interrupted run, or None).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement train(data_path, output_path, **kwargs)")

    def predict(self, batch: Sequence[Any], **kwargs: Any) -> list[AnnotationCollection]:
        """Predict a batch of prepared items; return one ``AnnotationCollection`` per item, same order.

        ``kwargs["items"]`` holds the ``Item`` records of the batch (id, mimetype, metadata).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement predict(batch, **kwargs)")

    def prepare_item_func(self, item: Item) -> Any:
        """Turn an item into a model input: images to ``H x W x 3`` RGB uint8 arrays, text to ``str``.

        Never returns ``None``: an item that cannot be prepared raises an error naming it.
        """
        what = f"item {item.id} ({item.path})"
        data = self.item_bytes(item)
        if item.mimetype.startswith("image/"):
            return decode_image(data, what=what, max_bytes=self.configuration.get("prepared_bytes_budget") or None)
        if item.mimetype.startswith("text/") or item.mimetype == "application/json":
            return decode_text(data, what=what)
        raise ValidationError(what, "mimetype", f"no default preparation for {item.mimetype!r}; override prepare_item_func")

    def convert_from_dataset(self, data_path: str, **kwargs: Any) -> None:
        """Convert the downloaded layout under ``data_path`` to the model's own format (default: nothing)."""

    def convert_from_dtlpy(self, data_path: str, **kwargs: Any) -> None:
        """Alias of ``convert_from_dataset`` for adapters written against dtlpy."""
        return self.convert_from_dataset(data_path, **kwargs)

    # --- helpers for user functions ---------------------------------------------------

    def item_bytes(self, item: Item) -> bytes:
        """The raw bytes of an item."""
        return self.registry.read_item(item)

    # --- wrapper functions ------------------------------------------------------------

    def load_from_model(
        self, model: Model | str | None = None, local_path: str | None = None, overwrite: bool = True, **kwargs: Any
    ) -> Path:
        """Download the model's artifacts, verify digests, and call ``load``."""
        from .flows.load import load_from_model

        return load_from_model(self, model, local_path=local_path, overwrite=overwrite, **kwargs)

    def save_to_model(self, local_path: str | None = None, cleanup: bool = False, replace: bool = True, **kwargs: Any) -> Model:
        """Call ``save``, upload the files as the model's next version, persist the configuration."""
        from .flows.save import save_to_model

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
        from .flows.prepare_data import prepare_data

        return prepare_data(self, dataset, root_path=root_path, data_path=data_path, output_path=output_path, overwrite=overwrite, **kwargs)

    def train_model(self, model: Model | str, cleanup: bool = False, progress: Any = None, **kwargs: Any) -> Model:
        """Train the model on its subsets and save the result as a new version."""
        from .flows.train import train_model

        return train_model(self, model, cleanup=cleanup, progress=progress, **kwargs)

    def predict_items(self, items: Iterable[Item], batch_size: int | None = None, **kwargs: Any) -> "PredictionReport":
        """Predict items in a stream of batches and write the results; returns the per-item report."""
        from .flows.predict import predict_items

        return predict_items(self, items, batch_size=batch_size, **kwargs)

    def predict_dataset(
        self, dataset: Dataset | str, filters: Filters | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> "PredictionReport":
        """Predict every item of the dataset matching ``filters``; returns the per-item report."""
        from .flows.predict import predict_dataset

        return predict_dataset(self, dataset, filters=filters, **kwargs)

    def evaluate_model(
        self, model: Model | str, dataset: Dataset | str, filters: Filters | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> "EvaluationResult":
        """Predict the subset, score it against ground truth, store metrics and a report."""
        from .flows.evaluate import evaluate_model

        return evaluate_model(self, model, dataset, filters=filters, **kwargs)
