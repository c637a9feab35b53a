"""The records the framework stores: items, datasets, annotations, models."""

from .annotation import ANNOTATION_TYPES, Annotation, AnnotationCollection, ModelInfo, decode_mask, encode_mask
from .dataset import Dataset
from .embedding import Embedding
from .filters import Filters
from .item import SUPPORTED_MIMETYPES, Item
from .prediction import PredictionSet
from .model import MODEL_STATUSES, ArtifactFile, ArtifactManifest, CheckpointSet, Model

__all__ = [
    "ANNOTATION_TYPES",
    "MODEL_STATUSES",
    "SUPPORTED_MIMETYPES",
    "Annotation",
    "AnnotationCollection",
    "ArtifactFile",
    "ArtifactManifest",
    "CheckpointSet",
    "Dataset",
    "Embedding",
    "Filters",
    "Item",
    "Model",
    "ModelInfo",
    "PredictionSet",
    "decode_mask",
    "encode_mask",
]
