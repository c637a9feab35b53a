"""``AdapterHooks``: what a user writes in an adapter, and what the wrapper functions rely on.

The user functions (``load``, ``save``, ``train``, ``predict``, ``prepare_item_func``,
``convert_from_dataset``) are plain methods with defaults; the adapter's state (registry,
configuration, bound model, device, home) is set up here. This is the contract the
wrapper-function modules in ``adapter_base.flows`` are written against: they import this
module, never ``adapter_base.adapter``, and this module knows nothing of them.
The framework calls every hook through ``hook_calls.call_hook``: whatever a hook raises,
``sys.exit`` and other ``BaseException`` s included, fails that hook by name.
``BaseModelAdapter`` (``adapter_base.adapter``) adds the wrapper functions as methods.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from .config import FRAMEWORK_DEFAULTS, merge_configuration, resolve_device
from .entities import AnnotationCollection, Item, Model
from .media import Reserve, decode_image, decode_item
from .registry import Registry
from .storage import adapter_home


class AdapterHooks:
    """The user's side of an adapter: its hooks and the state the wrapper functions drive them with.

    ``DEFAULT_CONFIGURATION`` holds the adapter's defaults; ``self.configuration`` is
    the framework defaults, then those, then ``model.configuration``, merged in that
    order. It is persisted to the model on ``save_to_model``.
    """

    DEFAULT_CONFIGURATION: ClassVar[dict[str, Any]] = {}
    #: True when the adapter predicts well with no trained version (e.g. ``load`` fetches pretrained
    #: weights): ``predict`` and ``evaluate`` then accept a model that was never trained.
    PREDICTS_UNTRAINED: ClassVar[bool] = False

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        store: str | None = None,
        configuration: Mapping[str, Any] | None = None,
    ) -> None:
        self.logger = logging.getLogger(f"adapter.{type(self).__name__}")
        self.registry = registry if registry is not None else Registry.open(store)
        self.model: Any = None  # the user's model object, set by ``load``
        self._bound_model: Model | None = None
        #: Training curves of the current run: figure -> legend -> [[x, y], ...] (``log_curve``).
        self.curves: dict[str, dict[str, list[list[Any]]]] = {}
        self.model_entity: Model | None = None
        self._overrides = dict(configuration or {})
        self.configuration: dict[str, Any] = self._merged_configuration(None)

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
        self._bound_model = model
        self.model_entity = model
        self.configuration = self._merged_configuration(model)

    @property
    def bound_model(self) -> Model | None:
        """The model record the wrapper functions work with (``model_entity`` is what the adapter's own code sees:
        the same record here, a richer view of it in an API layer such as ``adapter_base.dtlpy_compat``)."""
        return self.__dict__.get("_bound_model")

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
        """Load the model from the files in ``local_path`` into ``self.model``.

        With ``configuration["load_timeout_s"]`` set (default 3600) it runs on a thread of its
        own and fails with a ``TimeoutError`` once it has run that long; null runs it on the
        calling thread, with no limit.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement load(local_path, **kwargs)")

    def save(self, local_path: str, **kwargs: Any) -> None:
        """Write the model's files into ``local_path`` (a ``save`` that leaves it empty makes no version)."""
        raise NotImplementedError(f"{type(self).__name__} must implement save(local_path, **kwargs) to save or train")

    def train(self, data_path: str, output_path: str, **kwargs: Any) -> None:
        """Train on the layout under ``data_path``; write outputs to ``output_path``.

        ``kwargs`` carries ``on_epoch_end_callback(i_epoch, n_epochs, metrics=None)`` (``n_epoch=`` as dtlpy
        names it works too; each metric becomes a curve, see ``log_curve``),
        ``checkpoint_dir`` (save checkpoints there; they are kept in the store) and
        ``resume_checkpoint`` (the checkpoint directory of an interrupted run, or None).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement train(data_path, output_path, **kwargs)")

    def predict(self, batch: Sequence[Any], **kwargs: Any) -> list[AnnotationCollection]:
        """Predict a batch of prepared items; return one ``AnnotationCollection`` per item, same order.

        ``kwargs["items"]`` holds the ``Item`` records of the batch (id, mimetype, metadata).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement predict(batch, **kwargs)")

    def embed(self, batch: Sequence[Any], **kwargs: Any) -> list[Any]:
        """Feature vectors of a batch of prepared items: one 1-D sequence of numbers per item, same order.

        ``kwargs["items"]`` holds the ``Item`` records of the batch, as for ``predict``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement embed(batch, **kwargs) to embed")

    def prepare_item_func(self, item: Item) -> Any:
        """Turn an item into a model input: images to ``H x W x 3`` RGB uint8 arrays, text to ``str``.

        Never returns ``None``: an item that cannot be prepared raises an error naming it.
        """
        return default_input(self, item)

    def convert_from_dataset(self, data_path: str, **kwargs: Any) -> None:
        """Convert the downloaded layout under ``data_path`` to the model's own format (default: nothing)."""

    def prepared_record(self, item: Item, ground_truth: AnnotationCollection) -> tuple[str, dict[str, Any]]:
        """The JSON record ``prepare_data`` writes for ``item``: its path under ``json/`` and its content."""
        return item.path + ".json", {"item": item.to_dict(), "annotations": [a.to_dict() for a in ground_truth]}

    def convert_from_dtlpy(self, data_path: str, **kwargs: Any) -> None:
        """Alias of ``convert_from_dataset`` for adapters written against dtlpy."""
        return self.convert_from_dataset(data_path, **kwargs)

    # --- helpers for user functions ---------------------------------------------------

    def log_curve(self, figure: str, legend: str, x: Any, y: Any) -> None:
        """Add the point (``x``, ``y``) to line ``legend`` of figure ``figure`` (e.g. ``loss``/``val``, epoch, value).

        A training run keeps the curves with the version it saves (``model.metrics["curves"]``);
        ``model show`` lists them and the evaluation report draws them.
        """
        self.curves.setdefault(str(figure), {}).setdefault(str(legend), []).append([x, y])

    def item_bytes(self, item: Item) -> bytes:
        """The raw bytes of an item."""
        return self.registry.read_item(item)


def default_input(
    adapter: AdapterHooks, item: Item, image_decoder: Callable[..., Any] = decode_image, reserve: Reserve | None = None
) -> Any:
    """The default ``prepare_item_func`` of ``adapter``, its images decoded by ``image_decoder``; an image that
    needs more than ``prepared_bytes_budget`` to decode fails, and ``reserve`` (when given) gets what it needs first."""
    return decode_item(
        adapter.item_bytes(item),
        item.mimetype,
        what=f"item {item.id} ({item.path})",
        max_bytes=adapter.configuration.get("prepared_bytes_budget") or None,
        image_decoder=image_decoder,
        reserve=reserve,
    )
