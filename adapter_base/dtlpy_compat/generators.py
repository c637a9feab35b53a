"""dtlpy's data generators over the prepared layout: ``DatasetGenerator``, ``DatasetGeneratorTorch``, ``collate_torch``.

A generator reads one prepared subset (``<data_path>/items`` and dtlpy's JSON in
``<data_path>/json``), keeps the items with ground truth of its ``annotation_type``, and
yields dicts with ``image`` (an array from PIL), ``annotations`` (class ids, boxes,
polygons, or a label-id mask for segmentation), ``labels`` and paths; ``transforms`` run
through ``transforms_callback`` (default: torchvision compositions, imgaug augmenters with
their boxes or masks, or plain callables on the image).
"""

from __future__ import annotations

import collections
import collections.abc
import copy
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw

from .entities import AnnotationType
from .finder import missing
from .records import png_mask

try:  # the torch generator needs torch; the others do not
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover - torch absent
    _TorchDataset = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)

__all__ = ["DataItem", "DatasetGenerator", "DatasetGeneratorTorch", "collate_default", "collate_torch", "default_transforms_callback"]

_BOXED = (AnnotationType.CLASSIFICATION.value, AnnotationType.SEGMENTATION.value, AnnotationType.BOX.value, AnnotationType.POLYGON.value)


class DataItem(dict):
    """One sample: a dict with an ``image_filepath`` attribute."""

    @property
    def image_filepath(self) -> str:
        return self["image_filepath"]


def _bounds(ann: dict[str, Any]) -> list[float]:
    """left, top, right, bottom of a dtlpy JSON annotation (zeros where it has no geometry)."""
    kind, c = ann.get("type"), ann.get("coordinates")
    if kind == AnnotationType.BOX.value:
        xs, ys = [c[0]["x"], c[1]["x"]], [c[0]["y"], c[1]["y"]]
    elif kind == AnnotationType.POLYGON.value:
        xs, ys = [p["x"] for p in c[0]], [p["y"] for p in c[0]]
    elif kind == AnnotationType.POINT.value:
        xs, ys = [c["x"]], [c["y"]]
    elif kind == AnnotationType.SEGMENTATION.value:
        rows, cols = np.nonzero(png_mask(c))
        xs, ys = (cols.tolist(), rows.tolist()) if len(rows) else ([0], [0])
    else:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))]


class DatasetGenerator:
    """dtlpy's ``DatasetGenerator`` over one prepared subset; see the module docstring.

    ``data_path`` must exist (the subset folder ``prepare_data`` wrote, e.g.
    ``os.path.join(data_path, 'train')``): nothing is downloaded here, so ``filters`` and
    ``overwrite`` (download options) are ignored, as dtlpy ignores them for data already there.
    """

    def __init__(
        self,
        dataset_entity: Any,
        annotation_type: Any,
        item_type: Any = None,
        filters: Any = None,
        data_path: str | None = None,
        overwrite: bool = False,
        id_to_label_map: dict[Any, str] | None = None,
        label_to_id_map: dict[str, Any] | None = None,
        transforms: Any = None,
        transforms_callback: Callable[..., Any] | None = None,
        num_workers: int = 0,
        batch_size: int | None = None,
        collate_fn: Callable[..., Any] | None = None,
        shuffle: bool = True,
        seed: int | None = None,
        to_categorical: bool = False,
        to_mask: bool = False,
        class_balancing: bool = False,
        return_originals: bool = False,
        ignore_empty: bool = True,
    ) -> None:
        if data_path is None or not Path(data_path).is_dir():
            # dtlpy downloads the dataset (with ``filters``) here; prepare_data has done it already
            raise missing(f"dtlpy DatasetGenerator(data_path={data_path!r}) downloading a dataset") from None
        self._dataset_entity = dataset_entity
        self.item_type = [item_type] if isinstance(item_type, str) else list(item_type or ["jpg", "jpeg", "png", "bmp"])
        if label_to_id_map is None and id_to_label_map is None:
            label_to_id_map = dict(dataset_entity.instance_map)
        if label_to_id_map is None:
            label_to_id_map = {v: int(k) for k, v in (id_to_label_map or {}).items()}
        if id_to_label_map is None:
            id_to_label_map = {int(v): k for k, v in label_to_id_map.items()}
        self.id_to_label_map = {int(k): v for k, v in id_to_label_map.items()}
        self.label_to_id_map = label_to_id_map
        self.annotation_type = annotation_type
        self.to_mask = bool(to_mask) or annotation_type == AnnotationType.SEGMENTATION
        self.root_dir = str(data_path)
        self._items_path = Path(data_path) / "items"
        self._json_path = Path(data_path) / "json"
        self._mask_path = Path(data_path) / "instance"
        self._transforms = transforms
        self._transforms_callback = transforms_callback or (default_transforms_callback if transforms is not None else None)
        self.num_workers = num_workers
        self.to_categorical = to_categorical
        self.num_classes = len(label_to_id_map)
        self.shuffle = shuffle
        self.seed = seed
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.class_balancing = class_balancing
        self.return_originals = return_originals
        self.ignore_empty = ignore_empty
        self.data_items: list[DataItem] = []
        self.load_annotations()

    @property
    def dataset_entity(self) -> Any:
        return self._dataset_entity

    @property
    def n_items(self) -> int:
        return len(self.data_items)

    # --- loading ------------------------------------------------------------------------

    def _load_single(self, image_filepath: Path) -> tuple[DataItem | None, bool]:
        info = DataItem(image_filepath=str(image_filepath))
        rel = image_filepath.relative_to(self._items_path)
        annotation_filepath = self._json_path / rel.with_suffix(".json")
        record = json.loads(annotation_filepath.read_text()) if annotation_filepath.is_file() else None
        info["item_id"] = (record or {}).get("id", "")
        is_empty = False
        wanted = [
            a
            for a in (record or {}).get("annotations", [])
            if "model" not in (a.get("metadata") or {}).get("user", {}) and a.get("type") == getattr(self.annotation_type, "value", self.annotation_type)
        ]
        if self.annotation_type is not None:
            class_ids, labels, boxes, polygons = [], [], [], []
            for ann in wanted:
                if ann["type"] not in _BOXED:
                    raise ValueError(f"unsupported annotation type: {ann['type']}")
                if ann["label"] in self.label_to_id_map:
                    class_ids.append(self.label_to_id_map[ann["label"]])
                else:
                    log.warning("label %r is not in label_to_id_map: skipped", ann["label"])
                labels.append(ann["label"])
                boxes.append(np.asarray(_bounds(ann)))
                if ann["type"] == AnnotationType.POLYGON.value:
                    polygons.append(np.asarray([[p["x"], p["y"]] for p in ann["coordinates"][0]]))
            info.update(
                {
                    AnnotationType.BOX.value: np.asarray(boxes).astype(float),
                    AnnotationType.CLASSIFICATION.value: np.asarray(class_ids),
                    AnnotationType.POLYGON.value: np.asarray(polygons, dtype=object if polygons else None),
                    "labels": labels,
                }
            )
            is_empty = len(class_ids) == 0
        if self.to_mask:
            mask_filepath = self._mask_path / rel.with_suffix(".png")
            info[AnnotationType.SEGMENTATION.value] = str(mask_filepath)
            if not mask_filepath.is_file():
                # dtlpy downloads an instance map; here it is drawn from the JSON when read
                info["_mask_annotations"] = [a for a in (record or {}).get("annotations", []) if "model" not in (a.get("metadata") or {}).get("user", {})]
                is_empty = is_empty or not any(a["type"] in (AnnotationType.SEGMENTATION.value, AnnotationType.POLYGON.value) for a in info["_mask_annotations"])
        info["annotation_filepath"] = str(annotation_filepath)
        return info, is_empty

    def load_annotations(self) -> None:
        """Collect the subset's items (by ``item_type`` extension) with their ground truth; balance, shuffle."""
        files: list[Path] = []
        for ext in self.item_type:
            pattern = re.compile(rf"\.{re.escape(ext)}$", re.IGNORECASE)
            files.extend(p for p in sorted(self._items_path.rglob("*")) if p.is_file() and pattern.search(p.name))
        with ThreadPoolExecutor(max_workers=8) as pool:
            outputs = list(pool.map(self._load_single, files))
        empty = sum(1 for _, is_empty in outputs if is_empty)
        self.data_items = [d for d, is_empty in outputs if d is not None and not (is_empty and self.ignore_empty)]
        log.info("data generator %s: %d item(s) loaded, %d without annotations %s", self.root_dir, len(outputs), empty, "ignored" if self.ignore_empty else "kept")
        if self.class_balancing:
            self.data_items = _oversampled(self.data_items)
        if self.shuffle:
            np.random.RandomState(256 if self.seed is None else self.seed).shuffle(self.data_items)

    # --- reading ------------------------------------------------------------------------

    def _mask(self, data_item: DataItem, shape: tuple[int, ...]) -> np.ndarray:
        anns = data_item.get("_mask_annotations")
        if anns is None:
            return np.asarray(Image.open(data_item[AnnotationType.SEGMENTATION.value]).convert("L"))
        canvas = Image.new("L", (shape[1], shape[0]), 0)
        draw = ImageDraw.Draw(canvas)
        for ann in anns:
            value = self.label_to_id_map.get(ann["label"])
            if value is None:
                continue
            if ann["type"] == AnnotationType.POLYGON.value:
                draw.polygon([(p["x"], p["y"]) for p in ann["coordinates"][0]], fill=int(value))
            elif ann["type"] == AnnotationType.SEGMENTATION.value:
                canvas.paste(int(value), mask=Image.fromarray(png_mask(ann["coordinates"]).astype(np.uint8) * 255))
        return np.asarray(canvas)

    def transform(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        if self._transforms is not None:
            image, target = self._transforms_callback(transforms=self._transforms, image=image, target=target, annotation_type=self.annotation_type)
        return image, target

    def __getsingleitem__(self, idx: int) -> DataItem:
        data_item = copy.deepcopy(self.data_items[idx])
        data_item.pop("_mask_annotations", None)
        image = np.asarray(Image.open(data_item["image_filepath"]))
        data_item["image"] = image
        key = getattr(self.annotation_type, "value", self.annotation_type)
        annotations = self._mask(self.data_items[idx], image.shape) if self.to_mask else data_item.get(key)
        if self.to_categorical:
            onehot = np.zeros((annotations.size, self.num_classes + 1))
            onehot[np.arange(annotations.size), annotations] = 1
            annotations = onehot
        data_item["annotations"] = annotations
        if self.return_originals:
            data_item.update({"orig_image": image.copy(), "orig_annotations": np.copy(annotations) if annotations is not None else []})
        if self._transforms is not None:
            data_item["image"], data_item["annotations"] = self.transform(image, annotations)
        return data_item

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def __len__(self) -> int:
        return int(np.ceil(self.n_items / (self.batch_size or 1)))

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, (int, np.integer)):
            if self.batch_size is None:
                out: Any = self.__getsingleitem__(int(idx))
                return self.collate_fn(out) if self.collate_fn is not None else out
            idx = slice(int(idx) * self.batch_size, min((int(idx) + 1) * self.batch_size, self.n_items))
        if not isinstance(idx, slice):
            raise TypeError(f"unsupported indexing: list indices must be integers or slices, not {type(idx).__name__}")
        idxs = list(range(idx.start or 0, self.n_items if idx.stop is None else idx.stop, idx.step or 1))
        if self.num_workers:
            with ThreadPoolExecutor(max_workers=self.num_workers) as pool:
                out = list(pool.map(self.__getsingleitem__, idxs))
        else:
            out = [self.__getsingleitem__(i) for i in idxs]
        return self.collate_fn(out) if self.collate_fn is not None else out


def _oversampled(items: list[DataItem]) -> list[DataItem]:
    """Random over-sampling (seed 42): every class id drawn as often as the most common one."""
    pairs = [(i, int(c)) for i, item in enumerate(items) for c in item[AnnotationType.CLASSIFICATION.value]]
    counts = collections.Counter(c for _, c in pairs)
    if len(counts) < 2:
        raise ValueError("The target 'y' needs to have more than 1 class. Got 1 class instead")
    rng = np.random.RandomState(42)
    top = max(counts.values())
    chosen = [i for i, _ in pairs]
    for cls_id, n in sorted(counts.items()):
        members = [i for i, c in pairs if c == cls_id]
        chosen.extend(rng.choice(members, size=top - n, replace=True).tolist())
    return [items[i] for i in chosen]


if _TorchDataset is not None:

    class DatasetGeneratorTorch(DatasetGenerator, _TorchDataset):
        """``DatasetGenerator`` as a ``torch.utils.data.Dataset`` (a tensor index works too)."""

        def __getitem__(self, idx: Any) -> Any:
            if hasattr(idx, "tolist"):
                idx = idx.tolist()
            return super().__getitem__(idx)

else:  # pragma: no cover - torch absent

    class DatasetGeneratorTorch(DatasetGenerator):  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError("DatasetGeneratorTorch needs PyTorch (pip install torch)")


# --- transforms -----------------------------------------------------------------------


def _kind(obj: Any) -> tuple[str, str]:
    t = type(obj)
    return t.__module__, t.__name__


def default_transforms_callback(transforms: Any, image: Any, target: Any, annotation_type: Any) -> tuple[Any, Any]:
    """Apply ``transforms`` (a list, a torchvision ``Compose``, an imgaug ``Sequential``, an augmenter or a callable)."""
    module, name = _kind(transforms)
    if module.startswith("torchvision.transforms") and name == "Compose":
        return default_transforms_callback(list(transforms.transforms), image, target, annotation_type)
    if module.startswith("imgaug.augmenters") and name == "Sequential":
        return default_transforms_callback(list(transforms), image, target, annotation_type)
    if isinstance(transforms, list):
        for t in transforms:
            image, target = default_transforms_callback(t, image, target, annotation_type)
        return image, target
    if "imgaug.augmenters" in module:
        if target is None or annotation_type is None or annotation_type == AnnotationType.CLASSIFICATION:
            return transforms(images=[image])[0], target
        if annotation_type == AnnotationType.BOX:
            images, boxes = transforms(images=[image], bounding_boxes=[target])
            return images[0], boxes[0]
        if annotation_type == AnnotationType.SEGMENTATION:
            images, masks = transforms(images=[image], segmentation_maps=[target[..., None]])
            return images[0], masks[0][:, :, 0]
        if annotation_type == AnnotationType.POLYGON:
            images, polygons = transforms(images=[image], polygons=[target])
            return images[0], polygons[0]
        raise ValueError(f"unsupported annotation type for image augmentations: {annotation_type}")
    return transforms(image), target


# --- collate --------------------------------------------------------------------------

_STRINGS = re.compile(r"[SaUO]")


def _collate(batch: list[Any], arrays: Callable[[list[Any]], Any], scalars: Callable[[list[Any], type], Any], tensor: Callable[[list[Any]], Any] | None) -> Any:
    elem = batch[0]
    if tensor is not None and type(elem).__module__ == "torch" and type(elem).__name__ == "Tensor":
        return tensor(batch)
    if isinstance(elem, np.ndarray):
        if _STRINGS.search(elem.dtype.str):
            raise TypeError(f"collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {elem.dtype}")
        return arrays(batch)
    if isinstance(elem, np.generic) and not isinstance(elem, (np.str_, np.bytes_)):
        return scalars(batch, type(elem))
    if isinstance(elem, (str, bytes)) or elem is None:
        return batch
    if isinstance(elem, (bool, int, float)):
        return scalars(batch, type(elem))
    if isinstance(elem, collections.abc.Mapping):
        return {key: _collate([d[key] for d in batch], arrays, scalars, tensor) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(_collate(list(s), arrays, scalars, tensor) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        return list(zip(*batch))
    raise TypeError(f"collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {type(elem).__name__}")


def collate_torch(batch: list[Any]) -> Any:
    """Samples to a batch: tensors and same-shape arrays stacked, numbers to tensors, dicts key by key, sequences transposed."""
    import torch

    def arrays(b: list[Any]) -> Any:
        try:
            return torch.stack([torch.as_tensor(a) for a in b])
        except RuntimeError:  # different shapes: kept as a list
            return b

    def scalars(b: list[Any], kind: type) -> Any:
        return torch.tensor(b, dtype=torch.float64) if kind is float else torch.as_tensor(np.asarray(b))

    return _collate(batch, arrays, scalars, lambda b: torch.stack(b, 0))


def collate_default(batch: list[Any]) -> Any:
    """As ``collate_torch`` with numpy: arrays stacked, numbers kept as lists."""

    def arrays(b: list[Any]) -> Any:
        try:
            return np.stack(b, axis=0)
        except ValueError:
            return b

    return _collate(batch, arrays, lambda b, kind: b, None)
