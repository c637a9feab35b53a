"""dtlpy's entities over ours: annotation definitions and collections, and views of models, datasets, items.

The views (``Model``, ``Dataset``, ``Item``) wrap one of our records and the adapter (or
registry) it came with; attributes they do not define are the record's. Every platform
call with no meaning here raises ``DtlpyLayerError`` naming it and what to use instead.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import os
import shutil
import tempfile
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
from PIL import Image

from .. import entities as core
from ..errors import ValidationError
from ..local_dirs import safe_join
from .finder import missing, missing_attribute

if TYPE_CHECKING:
    from ..hooks import AdapterHooks

__all__ = [
    "AnnotationCollection",
    "AnnotationType",
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
]


class AnnotationType(str, Enum):
    """dtlpy's annotation type names (the values its JSON carries)."""

    BOX = "box"
    CLASSIFICATION = "class"
    POINT = "point"
    POLYGON = "segment"
    POLYLINE = "polyline"
    SEGMENTATION = "binary"


class ViewAnnotationOptions(str, Enum):
    """dtlpy's download formats: only JSON (and INSTANCE masks, rendered by the data generator) exist here."""

    JSON = "json"
    INSTANCE = "instance"
    MASK = "mask"


# --- annotation definitions -----------------------------------------------------------


class _Definition:
    """An annotation's geometry and label, as dtlpy's ``dl.Box(...)`` etc.; ``to_annotation`` makes ours."""

    type: AnnotationType

    def __init__(self, label: str, attributes: Any = None, description: str | None = None) -> None:
        self.label = label
        self.attributes = attributes if isinstance(attributes, dict) else {}
        self.description = description

    def to_annotation(self, model: core.ModelInfo | None = None, metadata: dict[str, Any] | None = None) -> core.Annotation:
        """Our ``Annotation`` of this definition."""
        raise NotImplementedError

    def _kw(self, model: core.ModelInfo | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
        kw: dict[str, Any] = {"attributes": dict(self.attributes), "model": model}
        if metadata:
            kw["metadata"] = dict(metadata)
        return kw


class Classification(_Definition):
    """``dl.Classification(label)``: a whole-item label."""

    type = AnnotationType.CLASSIFICATION

    def to_annotation(self, model: core.ModelInfo | None = None, metadata: dict[str, Any] | None = None) -> core.Annotation:
        return core.Annotation.classification(str(self.label), **self._kw(model, metadata))


class Box(_Definition):
    """``dl.Box(left, top, right, bottom, label)``: a box in pixels."""

    type = AnnotationType.BOX

    def __init__(self, left: float, top: float, right: float, bottom: float, label: str, attributes: Any = None, description: str | None = None, angle: float | None = None) -> None:
        super().__init__(label, attributes, description)
        if angle:
            raise missing("dtlpy.Box(angle=...)") from None
        self.left, self.top, self.right, self.bottom = left, top, right, bottom

    def to_annotation(self, model: core.ModelInfo | None = None, metadata: dict[str, Any] | None = None) -> core.Annotation:
        return core.Annotation.box(self.left, self.top, self.right, self.bottom, str(self.label), **self._kw(model, metadata))


class Point(_Definition):
    """``dl.Point(x, y, label)``."""

    type = AnnotationType.POINT

    def __init__(self, x: float, y: float, label: str, attributes: Any = None, description: str | None = None) -> None:
        super().__init__(label, attributes, description)
        self.x, self.y = x, y

    def to_annotation(self, model: core.ModelInfo | None = None, metadata: dict[str, Any] | None = None) -> core.Annotation:
        return core.Annotation.point(self.x, self.y, str(self.label), **self._kw(model, metadata))


class Polygon(_Definition):
    """``dl.Polygon(geo, label)``: ``geo`` is an ``N x 2`` array of (x, y) points."""

    type = AnnotationType.POLYGON

    def __init__(self, geo: Any, label: str, attributes: Any = None, description: str | None = None) -> None:
        super().__init__(label, attributes, description)
        self.geo = np.asarray(geo, dtype=float).reshape(-1, 2)

    @classmethod
    def from_segmentation(cls, mask: Any, label: str, attributes: Any = None, **kwargs: Any) -> "Segmentation":
        """dtlpy traces the mask's outline; here the mask is kept whole, as a ``binary_mask`` annotation."""
        return Segmentation(np.asarray(mask) > 0, label, attributes)

    def to_annotation(self, model: core.ModelInfo | None = None, metadata: dict[str, Any] | None = None) -> core.Annotation:
        return core.Annotation.polygon(self.geo.tolist(), str(self.label), **self._kw(model, metadata))


class Segmentation(_Definition):
    """``dl.Segmentation(geo, label)``: ``geo`` is an ``H x W`` mask."""

    type = AnnotationType.SEGMENTATION

    def __init__(self, geo: Any, label: str, attributes: Any = None, description: str | None = None, color: Any = None) -> None:
        super().__init__(label, attributes, description)
        self.geo = np.asarray(geo)

    def to_annotation(self, model: core.ModelInfo | None = None, metadata: dict[str, Any] | None = None) -> core.Annotation:
        return core.Annotation.binary_mask(self.geo > 0, str(self.label), **self._kw(model, metadata))


class Polyline(_Definition):
    """``dl.Polyline``: not an annotation type here (raises)."""

    type = AnnotationType.POLYLINE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise missing("dtlpy.Polyline")


class AnnotationCollection(core.AnnotationCollection):
    """``dl.AnnotationCollection()``: ``add(annotation_definition=dl.Box(...), model_info={...})`` as dtlpy's."""

    def __init__(self, item: Any = None, annotations: list[core.Annotation] | None = None, item_id: str | None = None) -> None:
        super().__init__(annotations=list(annotations or []), item_id=item_id or getattr(item, "id", None))

    def add(  # type: ignore[override]
        self,
        annotation_definition: Any = None,
        object_id: Any = None,
        frame_num: Any = None,
        end_frame_num: Any = None,
        automated: bool = True,
        fixed: bool = True,
        object_visible: bool = True,
        metadata: dict[str, Any] | None = None,
        parent_id: Any = None,
        prompt_id: Any = None,
        model_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> core.Annotation:
        """Add an annotation; ``model_info`` (``confidence`` required, in [0, 1]) marks it a prediction."""
        model = None
        if model_info is not None:
            if not isinstance(model_info, dict) or "confidence" not in model_info:
                raise ValidationError("AnnotationCollection.add", "model_info", 'must be a dict with key "confidence"')
            model = core.ModelInfo(confidence=float(model_info["confidence"]), model_id=model_info.get("model_id"), model_name=model_info.get("name"))
        if isinstance(annotation_definition, core.Annotation):
            annotation = annotation_definition if model is None else core.Annotation.from_dict({**annotation_definition.to_dict(), "model": model.to_dict()})
        elif isinstance(annotation_definition, _Definition):
            annotation = annotation_definition.to_annotation(model, metadata)
        else:
            raise ValidationError(
                "AnnotationCollection.add", "annotation_definition", f"expected dl.Box, dl.Classification, dl.Point, dl.Polygon or dl.Segmentation, got {type(annotation_definition).__name__}"
            )
        return super().add(annotation)


# --- training curves --------------------------------------------------------------------


class PlotSample:
    """``dl.PlotSample(figure, legend, x, y)``: one point of a training curve."""

    def __init__(self, figure: str, legend: str, x: Any, y: Any) -> None:
        self.figure, self.legend, self.x, self.y = figure, legend, x, y

    def to_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "legend": self.legend, "data": {"x": self.x, "y": self.y}}


class _Metrics:
    """``model.metrics``: ``create(samples)`` logs curve points (``AdapterHooks.log_curve``), kept with the version."""

    def __init__(self, adapter: "AdapterHooks") -> None:
        self._adapter = adapter

    def create(self, samples: PlotSample | Iterable[PlotSample], dataset_id: str | None = None) -> bool:
        for s in [samples] if isinstance(samples, PlotSample) else samples:
            self._adapter.log_curve(s.figure, s.legend, s.x, s.y)
        return True

    def __getattr__(self, name: str) -> Any:
        raise missing_attribute(f"Model.metrics.{name}")


# --- views ------------------------------------------------------------------------------


class _View:
    """Attributes not defined on the view are the record's; unknown ones raise ``DtlpyLayerError``."""

    _kind = ""

    def __init__(self, record: Any) -> None:
        object.__setattr__(self, "record", record)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        record = object.__getattribute__(self, "record")
        try:
            return getattr(record, name)
        except AttributeError:
            raise missing_attribute(f"{self._kind}.{name}") from None

    def __repr__(self) -> str:
        return f"dl.{self._kind}({self.record!r})"


class Dataset(_View):
    """``dl.Dataset``: a dataset record (id, name, labels)."""

    _kind = "Dataset"

    @property
    def labels_flat_dict(self) -> dict[str, str]:
        return {label: label for label in self.record.labels}

    @property
    def instance_map(self) -> dict[str, int]:
        """dtlpy's default label ids: 1, 2, ... in label order (0 is the background)."""
        return {label: i + 1 for i, label in enumerate(self.record.labels)}


class _Artifacts:
    """``model.artifacts``: the model's files. ``upload`` adds files to the next version the adapter saves."""

    def __init__(self, adapter: "AdapterHooks") -> None:
        self._adapter = adapter

    def upload(self, filepath: str, overwrite: bool = True, **kwargs: Any) -> list[str]:
        """Stage ``filepath`` (a file, a folder or a glob) to join the next saved version; returns the staged names."""
        paths = [Path(p) for p in sorted(glob.glob(str(filepath)))] or [Path(filepath)]
        staged = _staging_dir(self._adapter)
        names = []
        for path in paths:
            if not path.exists():
                raise ValidationError("Model.artifacts.upload", "filepath", f"{path} does not exist")
            dest = staged / path.name
            if path.is_dir():
                shutil.copytree(path, dest, dirs_exist_ok=True)
            elif overwrite or not dest.exists():
                shutil.copy2(path, dest)
            names.append(path.name)
        return names

    def download(self, local_path: str | None = None, overwrite: bool = True, **kwargs: Any) -> str:
        """Download the current version's files into ``local_path``; returns it."""
        model = self._adapter.bound_model
        assert model is not None
        path = Path(local_path or tempfile.mkdtemp(prefix=f"artifacts-{model.name}-"))
        path.mkdir(parents=True, exist_ok=True)
        if model.version:
            self._adapter.registry.download_artifacts(model, path)
        return str(path)

    def list(self) -> list[str]:
        """The current version's file paths."""
        model = self._adapter.bound_model
        return [f.path for f in model.artifacts.files] if model is not None and model.artifacts else []

    def __getattr__(self, name: str) -> Any:
        raise missing_attribute(f"Model.artifacts.{name}")


def _staging_dir(adapter: "AdapterHooks") -> Path:
    staged = adapter.__dict__.get("_dtlpy_staged")
    if staged is None:
        staged = Path(tempfile.mkdtemp(prefix="dtlpy-artifacts-"))
        adapter.__dict__["_dtlpy_staged"] = staged
    return staged


def add_staged_artifacts(adapter: "AdapterHooks", local_path: str) -> None:
    """Copy files staged with ``model.artifacts.upload`` into ``local_path`` (a file ``save`` wrote there wins)."""
    staged = adapter.__dict__.pop("_dtlpy_staged", None)
    if staged is None:
        return
    dest = Path(local_path)
    for src in staged.rglob("*"):
        target = dest / src.relative_to(staged)
        if src.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    shutil.rmtree(staged, ignore_errors=True)


class Model(_View):
    """``dl.Model``: the adapter's bound model record with dtlpy's derived attributes.

    ``configuration`` is the adapter's live configuration (kept with the next version, or
    now with ``update()``); ``id_to_label_map`` / ``label_to_id_map`` are stored there as dtlpy does.
    """

    _kind = "Model"

    def __init__(self, record: core.Model, adapter: "AdapterHooks") -> None:
        super().__init__(record)
        object.__setattr__(self, "_adapter", adapter)

    @property
    def configuration(self) -> dict[str, Any]:
        return self._adapter.configuration

    @configuration.setter
    def configuration(self, value: dict[str, Any]) -> None:
        self._adapter.configuration.clear()
        self._adapter.configuration.update(value)

    @property
    def id_to_label_map(self) -> dict[int, str]:
        cfg = self.configuration
        cfg["id_to_label_map"] = {int(k): v for k, v in cfg.get("id_to_label_map", dict(enumerate(self.record.labels))).items()}
        return cfg["id_to_label_map"]

    @id_to_label_map.setter
    def id_to_label_map(self, mapping: dict[Any, str]) -> None:
        self.configuration["id_to_label_map"] = {int(k): v for k, v in mapping.items()}

    @property
    def label_to_id_map(self) -> dict[str, int]:
        cfg = self.configuration
        if "label_to_id_map" not in cfg:
            cfg["label_to_id_map"] = {v: int(k) for k, v in self.id_to_label_map.items()}
        return cfg["label_to_id_map"]

    @label_to_id_map.setter
    def label_to_id_map(self, mapping: dict[str, Any]) -> None:
        self.configuration["label_to_id_map"] = {k: int(v) for k, v in mapping.items()}

    @property
    def dataset(self) -> Dataset | None:
        if not self.record.dataset_id:
            return None
        return Dataset(self._adapter.registry.get_dataset(self.record.dataset_id))

    @property
    def metadata(self) -> dict[str, Any]:
        """dtlpy's ``metadata.system.subsets``: each subset's filter, under ``filter`` too (as adapters read it)."""
        subsets = {name: {**flt, "filter": flt} for name, flt in self.record.subsets.items()}
        return {"system": {"subsets": subsets}}

    @property
    def metrics(self) -> _Metrics:
        return _Metrics(self._adapter)

    @property
    def artifacts(self) -> _Artifacts:
        return _Artifacts(self._adapter)

    @property
    def project(self) -> None:
        return None

    def update(self, system_metadata: bool = False, reload_services: bool = True, **kwargs: Any) -> "Model":
        """Persist the configuration and labels now (the current version is unchanged)."""
        adapter = self._adapter
        updated = adapter.registry.modify_model(self.record, lambda _: {"configuration": dict(adapter.configuration), "labels": list(self.record.labels)})
        adapter._bound_model = updated
        object.__setattr__(self, "record", updated)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("labels", "status"):  # dtlpy adapters set these before model.update()
            object.__setattr__(self, "record", _replace(self.record, **{name: list(value) if name == "labels" else value}))
            self._adapter._bound_model = self.record
        elif isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        else:
            raise missing(f"Model.{name} (setting it)")


def _replace(record: Any, **changes: Any) -> Any:
    return dataclasses.replace(record, **changes)


class Item(_View):
    """``dl.Item``: an item record that can ``download`` itself."""

    _kind = "Item"

    def __init__(self, record: core.Item, adapter: "AdapterHooks") -> None:
        super().__init__(record)
        object.__setattr__(self, "_adapter", adapter)

    @property
    def filename(self) -> str:
        return "/" + self.record.path

    @property
    def dataset(self) -> Dataset:
        return Dataset(self._adapter.registry.get_dataset(self.record.dataset_id))

    def download(self, local_path: str | None = None, file_types: Any = None, save_locally: bool = True, to_array: bool = False, overwrite: bool = False, **kwargs: Any) -> Any:
        """``save_locally=False``: a named ``BytesIO`` (an ``ndarray`` with ``to_array``); else the local file's path."""
        data = self._adapter.item_bytes(self.record)
        if not save_locally:
            if to_array:
                if "image" not in self.record.mimetype:
                    raise ValidationError(f"item {self.record.id}", "download", "to_array=True is for images only")
                return np.array(Image.open(io.BytesIO(data)))
            buf = io.BytesIO(data)
            buf.name = self.record.name
            return buf
        root = Path(local_path) if local_path else self._adapter.home / "items" / self.record.dataset_id
        dest = safe_join(root, self.record.path, what="Item.path") if not (local_path and Path(local_path).suffix) else Path(local_path)
        if overwrite or not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
        return str(dest)


# --- DQL filters: descriptions only -----------------------------------------------------


class FiltersResource(str, Enum):
    """dtlpy's filter resources (only named here: nothing is queried)."""

    ITEM = "items"
    ANNOTATION = "annotations"
    METRICS = "metrics"


class Filters:
    """``dl.Filters(...)``: kept as given, as a description (e.g. handed to a data generator over
    data already prepared, where dtlpy ignores it too); nothing here runs a DQL query."""

    def __init__(self, field: Any = None, values: Any = None, operator: Any = None, resource: Any = FiltersResource.ITEM, custom_filter: Any = None, **kwargs: Any) -> None:
        self.resource = resource
        self.custom_filter = custom_filter
        self.conditions: list[dict[str, Any]] = []
        self.page_size: int | None = None
        if field is not None:
            self.add(field=field, values=values, operator=operator)

    def add(self, field: Any, values: Any, operator: Any = None, **kwargs: Any) -> None:
        self.conditions.append({"field": field, "values": values, "operator": operator})

    def add_join(self, field: Any, values: Any, operator: Any = None, **kwargs: Any) -> None:
        self.conditions.append({"join": True, "field": field, "values": values, "operator": operator})

    def prepare(self) -> dict[str, Any]:
        return {"resource": getattr(self.resource, "value", self.resource), "custom_filter": self.custom_filter, "conditions": self.conditions}


# --- platform decorators: harmless here -------------------------------------------------


def _passthrough(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda obj: obj


class _Decorators:
    """``@dl.Package.decorators.module(...)`` / ``.function(...)``: no-ops (there is no package to deploy)."""

    module = staticmethod(_passthrough)
    function = staticmethod(_passthrough)


class Package:
    """``dl.Package``: only its decorators (no-ops) exist here."""

    decorators = _Decorators


class PackageModule:
    """``dl.PackageModule``: only ``@dl.PackageModule.decorators...`` exist here (no-ops)."""

    decorators = _Decorators
