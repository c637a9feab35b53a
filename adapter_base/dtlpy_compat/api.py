"""``dtlpy`` (``import dtlpy as dl``): the names Dataloop model adapters use, mapped onto adapter_base.

``dl.utilities`` and ``dl.entities`` are served as submodules; any other ``dl.*`` name
raises an error naming it and what to use instead (``unsupported.hint``).
"""

from __future__ import annotations

from .adapter import BaseModelAdapter
from .entities import (
    AnnotationCollection,
    AnnotationType,
    Box,
    Classification,
    Dataset,
    Filters,
    FiltersResource,
    Item,
    Model,
    Package,
    PackageModule,
    PlotSample,
    Point,
    Polygon,
    Polyline,
    Segmentation,
    ViewAnnotationOptions,
)

__version__ = "0.0.0+model-adapter"

__all__ = [
    "AnnotationCollection",
    "AnnotationType",
    "BaseModelAdapter",
    "Box",
    "Classification",
    "Dataset",
    "Filters",
    "FiltersResource",
    "Item",
    "Model",
    "Package",
    "PackageModule",
    "PlotSample",
    "Point",
    "Polygon",
    "Polyline",
    "Segmentation",
    "ViewAnnotationOptions",
    "__version__",
]
