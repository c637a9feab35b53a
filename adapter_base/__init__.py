"""adapter_base: model adapters that run in-process, under KFP's local runner, and on Kubeflow.

Write a ``BaseModelAdapter`` subclass with ``load``, ``save``, ``train``, ``predict``
(and optionally ``prepare_item_func``); the wrapper functions move data and
artifacts through the store, train, version, evaluate and predict in batches.
"""

from .adapter import BaseModelAdapter
from .entities import (
    Annotation,
    AnnotationCollection,
    ArtifactManifest,
    Dataset,
    Filters,
    Item,
    Model,
    ModelInfo,
    PredictionSet,
)
from .errors import (
    AdapterContractError,
    AdapterError,
    AdapterHookError,
    ConflictError,
    InvalidKeyError,
    NotFoundError,
    StoreError,
    ValidationError,
    VersionConflictError,
)
from .flows.evaluate import EvaluationResult
from .prediction import ItemFailure, PredictionOptions, PredictionReport
from .loading import load_adapter_class
from .registry import Registry
from .storage import ObjectStore, open_store

__version__ = "0.1.0"

__all__ = [
    "AdapterContractError",
    "AdapterError",
    "AdapterHookError",
    "Annotation",
    "AnnotationCollection",
    "ArtifactManifest",
    "BaseModelAdapter",
    "ConflictError",
    "Dataset",
    "EvaluationResult",
    "Filters",
    "InvalidKeyError",
    "Item",
    "ItemFailure",
    "Model",
    "ModelInfo",
    "NotFoundError",
    "ObjectStore",
    "PredictionOptions",
    "PredictionReport",
    "PredictionSet",
    "Registry",
    "StoreError",
    "ValidationError",
    "VersionConflictError",
    "load_adapter_class",
    "open_store",
]
