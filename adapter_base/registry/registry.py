"""The registry: datasets, items, annotations and versioned models, kept in an object store.

It is the stand-in for a hosted platform: everything is keyed by id, names are
unique per kind, and every record is one JSON object written atomically.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, TypeVar

from ..concurrency import map_all, ordered_map
from ..config import FRAMEWORK_DEFAULTS
from ..entities import (
    AnnotationCollection,
    ArtifactManifest,
    Dataset,
    Embedding,
    Filters,
    Item,
    Model,
    PredictionSet,
)
from ..entities._base import check_name, check_path_part, utc_now
from ..entities.item import check_relative_path
from ..errors import ConflictError, InvalidKeyError, NotFoundError, RecordMismatchError, StoreError, ValidationError, VersionConflictError
from ..secrets import redact
from ..storage import ObjectStore, open_store, validate_key
from . import layout
from .identity import check_identity, mismatch
from .locks import Locks
from .record_pages import iter_records
from .version_claims import VersionClaim
from .versions import ModelVersions

log = logging.getLogger(__name__)

E = TypeVar("E")
R = TypeVar("R", Dataset, Model)

_MIMETYPE_FALLBACKS = {".txt": "text/plain", ".json": "application/json"}
#: Model fields moved only by their own operations (a commit, an alias); ``update_model`` keeps the latest record's.
_MOVED_BY_THEIR_OWN = ("version", "artifacts", "aliases")


def guess_mimetype(path: str) -> str:
    """The mimetype of a file name, ``application/octet-stream`` when unknown."""
    suffix = Path(path).suffix.lower()
    return _MIMETYPE_FALLBACKS.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


@dataclass(frozen=True)
class DuplicatePath:
    """Several items found at one path: the id kept and the ids removed (``Registry.remove_duplicate_paths``)."""

    path: str
    kept: str
    removed: tuple[str, ...]


class Registry:
    """Datasets, items, annotations and models over one ``ObjectStore``.

    Records are kept here; the files of model versions, and the order in which a version
    becomes visible, are ``versions.ModelVersions`` (``self.versions``).
    """

    def __init__(self, store: ObjectStore, *, io_workers: int = FRAMEWORK_DEFAULTS["io_workers"]) -> None:
        self.store = store
        self.io_workers = io_workers
        self.pool = ThreadPoolExecutor(max_workers=io_workers, thread_name_prefix="registry-io")
        self.versions = ModelVersions(store, self.pool, io_workers)
        self.locks = Locks(store)
        # Folders (path prefixes) of items this registry added, per dataset: no item can sit at one.
        self._folders: dict[str, set[str]] = {}

    @classmethod
    def open(cls, uri: str | None = None, **kwargs: Any) -> "Registry":
        """A registry over the store at ``uri`` (default: the embedded local store)."""
        return cls(open_store(uri), **kwargs)

    def close(self) -> None:
        """Stop the I/O pool and release the store's connections."""
        self.pool.shutdown(wait=True)
        self.store.close()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- datasets -----------------------------------------------------------------------

    def create_dataset(self, name: str, labels: Iterable[str] = (), metadata: Mapping[str, Any] | None = None) -> Dataset:
        """Create a dataset with a unique name (a name left by an interrupted delete is free); of creates of one name at once, exactly one succeeds."""
        check_name("Dataset", "name", name)
        ds = Dataset(name=name, labels=list(labels), metadata=dict(metadata or {}))
        ds.validate()
        self._create_named("dataset", name, layout.dataset_name(name), layout.dataset_record, ds.id, ds.to_dict())
        log.info("created dataset %s (%s)", name, ds.id)
        return ds

    def _create_named(self, kind: str, name: str, name_key: str, record_key: Callable[[str], str], entity_id: str, record: Any) -> None:
        """Write a record and its name entry, the name held (``locks``): of creates of one name at once
        exactly one succeeds, the others get ``ConflictError``."""
        if self._named_id(name_key, record_key) is not None:  # the usual refusal, without taking a hold
            raise ConflictError(f"a {kind} named {name!r} already exists")
        with self.locks.held("dataset-name" if kind == "dataset" else "model-name", name, f"the {kind} name {name!r}"):
            if self._named_id(name_key, record_key) is not None:
                raise ConflictError(f"a {kind} named {name!r} already exists")
            self.store.put_json(record_key(entity_id), record)
            self.store.put_json(name_key, {"id": entity_id})

    def get_dataset(self, name_or_id: str) -> Dataset:
        """A dataset by id or by name."""
        ds_id = self._resolve(name_or_id, layout.dataset_name, layout.dataset_record, "dataset")
        return self._load_dataset(ds_id, name_or_id)

    def _load_dataset(self, ds_id: str, name_or_id: str) -> Dataset:
        key = layout.dataset_record(ds_id)
        return check_identity(Dataset.from_dict(self._get_record(key, name_or_id, "dataset")), key, **_identity(ds_id, name_or_id))

    def _dataset_id(self, dataset: Dataset | str) -> str:
        """The id of ``dataset`` (an entity, a name or an id); ``NotFoundError`` when no dataset has that name or id."""
        return dataset.id if isinstance(dataset, Dataset) else self.get_dataset(dataset).id

    def update_dataset(self, dataset: Dataset) -> Dataset:
        """Persist changed labels or metadata of a dataset (``NotFoundError`` when it was deleted meanwhile)."""
        return self.modify_dataset(dataset, lambda _: {"labels": dataset.labels, "metadata": dataset.metadata})

    def modify_dataset(self, dataset: Dataset, change: Callable[[Dataset], Mapping[str, Any]]) -> Dataset:
        """Apply ``change(latest record)`` (the fields to set) to the dataset's latest record and persist it;
        returns it. One writer of a dataset's record at a time: no change is lost to another made meanwhile,
        and a dataset deleted meanwhile stays deleted (``NotFoundError``)."""
        return self._rewrite("dataset", dataset, lambda i: self._load_dataset(i, i), layout.dataset_record, lambda latest: replace(latest, **change(latest)))

    def _rewrite(self, kind: Literal["dataset", "model"], entity: R, load: Callable[[str], R], key: Callable[[str], str], make: Callable[[R], R]) -> R:
        """Holding ``entity``'s record, write ``make(its latest record)`` over it; returns what was written."""
        with self.locks.held(kind, entity.id, f"the record of {kind} {entity.name!r}"):
            updated = make(load(entity.id))
            updated.validate()
            self.store.put_json(key(updated.id), updated.to_dict())
            return updated

    def list_datasets(self) -> list[Dataset]:
        """Every dataset, sorted by name (names left by an interrupted delete are skipped)."""
        found = self._list_named(layout.datasets_prefix(), self._load_dataset, "dataset")
        return sorted(found, key=lambda d: d.name)

    def delete_dataset(self, dataset: Dataset) -> None:
        """Remove a dataset with its items and annotations.

        Re-runnable: the record goes first (from then on the dataset is gone), the name
        last; a delete interrupted in between leaves a name that listings skip and
        ``create_dataset`` reuses.
        """
        self._folders.pop(dataset.id, None)
        self.store.delete(layout.dataset_record(dataset.id))
        self.store.delete_prefix(layout.dataset_prefix(dataset.id))
        self._release_name(layout.dataset_name(dataset.name), dataset.id)

    # --- items --------------------------------------------------------------------------

    def add_item(
        self,
        dataset: Dataset,
        path: str,
        data: bytes | str | Path,
        *,
        mimetype: str | None = None,
        subsets: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        annotations: AnnotationCollection | None = None,
        item_id: str | None = None,
    ) -> Item:
        """Store a file (bytes or a local path) as a new item, with optional ground truth.

        The item's id follows from the dataset and the path (``path_item_id``) unless
        ``item_id`` is given: concurrent adds of one path write the same item, never two.
        A path no store key can hold is a ``ValidationError`` naming it, before anything is written.
        """
        problem = self.path_problem(dataset.id, path)
        if problem is not None:
            raise ValidationError("Item", "path", f"{problem}: {path!r}")
        size = len(data) if isinstance(data, bytes) else Path(data).stat().st_size
        fields: dict[str, Any] = dict(
            dataset_id=dataset.id,
            path=path,
            mimetype=mimetype or guess_mimetype(path),
            size=size,
            subsets=list(subsets),
            metadata=dict(metadata or {}),
        )
        item = Item(id=item_id or path_item_id(dataset.id, path), **fields)
        item.validate()
        if annotations is not None:
            self._check_ground_truth(annotations)
        unfinished = self._check_path_free(dataset, item.path)
        # The path entry reserves the path; the record, written last, makes the item exist.
        # An entry whose item never got its record (a failed add) does not block the path.
        self.store.put_json(layout.item_path(dataset.id, item.path), {"id": item.id})
        try:
            if isinstance(data, bytes):
                self.store.put_bytes(layout.item_binary(dataset.id, item.id), data, item.mimetype)
            else:
                self.store.put_file(layout.item_binary(dataset.id, item.id), data, item.mimetype)
            if annotations is not None:
                self.set_ground_truth(item, annotations)
            elif unfinished == item.id:  # an earlier add of this item stopped after its ground truth
                self.store.delete(layout.ground_truth(dataset.id, item.id))
            # The record is written last: an item is listed only once its bytes are there.
            self.store.put_json(layout.item_record(dataset.id, item.id), item.to_dict())
        except BaseException:
            self._undo_add(item)
            raise
        try:
            # Checked again now that the record is there, without the folders this registry knows: of two
            # concurrent adds of "img" and "img/1.png" the later record's check sees the other, so at most one stays.
            self._check_file_or_folder(dataset, item.path)
        except ConflictError:
            self._remove_item(dataset.id, item.id)
            self._undo_add(item)
            raise
        parts = item.path.split("/")
        self._folders.setdefault(dataset.id, set()).update("/".join(parts[:depth]) for depth in range(1, len(parts)))
        return item

    def _undo_add(self, item: Item) -> None:
        """Best effort: remove what an add that failed before its record wrote (the item never existed).

        Nothing is removed once the record is there: a concurrent add of the same path (the
        same item id) finished it, and that item stays whole.
        """
        keys = [layout.ground_truth(item.dataset_id, item.id), layout.item_binary(item.dataset_id, item.id)]
        try:
            if self.store.exists(layout.item_record(item.dataset_id, item.id)):
                return
            if _entry_id(self.store.get_json(layout.item_path(item.dataset_id, item.path))) == item.id:
                keys.append(layout.item_path(item.dataset_id, item.path))
            for key in keys:
                self.store.delete(key)
        except Exception as exc:  # noqa: BLE001 - the add's own error matters; leftovers never block the path
            log.warning("could not remove the leftovers of the failed add of %s: %s", item.path, redact(str(exc)))

    def _path_holder(self, dataset_id: str, path: str) -> str | None:
        """The id of the item at ``path``, or None (no entry, or an entry whose item was never completed, or a
        path no entry key can hold, such as a folder name of 251-255 bytes, where no item can be)."""
        try:
            item_id = _entry_id(self.store.get_json(layout.item_path(dataset_id, path)))
        except (NotFoundError, InvalidKeyError):
            return None
        if item_id is None or not self.store.exists(layout.item_record(dataset_id, item_id)):
            return None
        return item_id

    def _check_path_free(self, dataset: Dataset, path: str) -> str | None:
        """``ConflictError`` if ``path``, a folder above it or a file below it is taken.

        A path is a file or a folder, never both: ``img`` and ``img/1.png`` cannot be
        written side by side when the dataset is downloaded for training. Returns the id a
        path entry without a record names (an add that never finished), else None.
        """
        try:
            entry_id = _entry_id(self.store.get_json(layout.item_path(dataset.id, path)))
        except NotFoundError:
            entry_id = None
        if entry_id is not None and self.store.exists(layout.item_record(dataset.id, entry_id)):
            raise ConflictError(f"dataset {dataset.name!r} already has an item at {path!r} (item {entry_id})")
        self._check_file_or_folder(dataset, path, self._folders.setdefault(dataset.id, set()))
        return entry_id

    def _check_file_or_folder(self, dataset: Dataset, path: str, known_folders: set[str] | frozenset[str] = frozenset()) -> None:
        """``ConflictError`` if an item sits at a folder above ``path`` or below it (``known_folders`` are not looked up)."""
        parts = path.split("/")
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            if above in known_folders:
                continue
            holder = self._path_holder(dataset.id, above)
            if holder is not None:
                raise ConflictError(
                    f"dataset {dataset.name!r} has an item at {above!r} (item {holder}), so {path!r} cannot be below it: a path is a file or a folder, not both"
                )
        prefix = layout.item_paths_prefix(dataset.id)
        for obj in self.store.list(layout.item_paths_below(dataset.id, path)):
            below = obj.key[len(prefix) : -len(".json")]
            holder = self._path_holder(dataset.id, below)
            if holder is not None:
                raise ConflictError(
                    f"dataset {dataset.name!r} has an item at {below!r} (item {holder}), so {path!r} cannot be a file: a path is a file or a folder, not both"
                )

    def path_problem(self, dataset_id: str, path: object) -> str | None:
        """Why ``path`` cannot be an item path of dataset ``dataset_id`` in this store (a short reason), None when it can."""
        return item_path_problem(dataset_id, path, self.store.check_key)

    def remove_duplicate_paths(self, dataset: Dataset, items: Iterable[Item]) -> tuple[dict[str, Item], list[DuplicatePath]]:
        """One item per path: where ``items`` (of ``dataset``) hold several at one path, keep one and remove the rest.

        Such duplicates were left by concurrent adds of versions before ids followed from
        paths. Kept: the item the path's entry names (the one a lookup by path returns);
        when it names none of them, the oldest (``created_at``, then id). A removed item
        goes with its bytes, ground truth and predictions, its record first. Returns the
        items by path and what was removed, per path.
        """
        kept: dict[str, Item] = {}
        several: dict[str, dict[str, Item]] = {}  # the paths holding more than one item (rare): their items by id
        for item in items:
            first = kept.setdefault(item.path, item)
            if first.id != item.id:
                several.setdefault(item.path, {first.id: first})[item.id] = item
        repairs: list[DuplicatePath] = []
        for path, by_id in several.items():
            try:
                named = _entry_id(self.store.get_json(layout.item_path(dataset.id, path)))
            except NotFoundError:
                named = None
            keep = by_id.get(named or "") or min(by_id.values(), key=lambda i: (i.created_at, i.id))
            removed = sorted(set(by_id) - {keep.id})
            for item_id in removed:
                self._remove_item(dataset.id, item_id)
            if named != keep.id:
                self.store.put_json(layout.item_path(dataset.id, path), {"id": keep.id})
            repairs.append(DuplicatePath(path, keep.id, tuple(removed)))
            log.warning("dataset %s had %d items at %r: kept %s, removed %s", dataset.name, len(by_id), path, keep.id, ", ".join(removed))
            kept[path] = keep
        return kept, repairs

    def _remove_item(self, dataset_id: str, item_id: str) -> None:
        """Remove an item: its record first (from then on it is not listed), then its bytes, ground truth, predictions and embeddings."""
        self.store.delete(layout.item_record(dataset_id, item_id))
        self.store.delete(layout.item_binary(dataset_id, item_id))
        self.store.delete_prefix(layout.item_annotations_prefix(dataset_id, item_id))

    def get_item(self, dataset_id: str, item_id: str) -> Item:
        """An item record by dataset and item id (a record that names another item or dataset is a ``ValidationError``)."""
        key = layout.item_record(dataset_id, item_id)
        return check_identity(Item.from_dict(self.store.get_json(key)), key, id=item_id, dataset_id=dataset_id)

    def find_item(self, dataset: Dataset, id_or_path: str) -> Item:
        """An item of ``dataset`` by id or by its path in the dataset."""
        try:
            return self.get_item(dataset.id, id_or_path)
        except ValidationError:
            raise  # that id's record exists, but is unreadable or another item's
        except (NotFoundError, ValueError, StoreError):
            pass  # not an item id: try it as a path
        try:
            holder = self._path_holder(dataset.id, id_or_path)
        except ValueError:
            holder = None
        if holder is None:
            raise NotFoundError(f"dataset {dataset.name!r} has no item with id or path {id_or_path!r}")
        return self.get_item(dataset.id, holder)

    def update_item(self, item: Item) -> Item:
        """Persist changed subsets or metadata of an item."""
        item.validate()
        self.store.put_json(layout.item_record(item.dataset_id, item.id), item.to_dict())
        return item

    def iter_item_results(
        self, dataset: Dataset | str, filters: Filters | Mapping[str, Any] | None = None
    ) -> Iterator[tuple[str, Item | BaseException]]:
        """Yield ``(item_id, Item or the error that made its record unreadable)`` for matching items.

        Lazy: records come in id order, from pages of copies where those are current
        (``record_pages``), else read a bounded window ahead; memory does not grow with
        the dataset. Unreadable records are yielded as errors so callers can report them
        and go on; so is a record that names another item or dataset than its key.
        ``dataset`` is an entity, a name or an id; ``NotFoundError`` when there is no such dataset.
        """
        return self._item_results(self._dataset_id(dataset), Filters.coerce(filters))

    def _item_results(self, ds_id: str, flt: Filters) -> Iterator[tuple[str, Item | BaseException]]:
        listed = False
        for item_id, result in self._listed_results(ds_id, flt):
            listed = True
            yield item_id, result
        if not listed and not self.store.exists(layout.dataset_record(ds_id)):  # an entity of a deleted dataset
            raise NotFoundError(f"no dataset with id {ds_id!r} in {self.store.uri}: it was deleted")

    def _listed_results(self, ds_id: str, flt: Filters) -> Iterator[tuple[str, Item | BaseException]]:
        window = 4 * self.io_workers
        if flt.item_ids is not None:
            ids = dict.fromkeys(flt.item_ids)
            records: Iterable[tuple[str, Any]] = ordered_map(
                lambda i: self.store.get_json(layout.item_record(ds_id, i)), ids, pool=self.pool, window=window
            )
        else:
            records = iter_records(self.store, ds_id, pool=self.pool, window=window)
        prefix = layout.item_records_prefix(ds_id)  # the record keys, built once (a key is validated when built)
        for item_id, record in records:
            if isinstance(record, BaseException):
                yield item_id, record
                continue
            try:
                item = check_identity(Item.from_dict(record), f"{prefix}{item_id}.json", id=item_id, dataset_id=ds_id)
            except Exception as exc:  # noqa: BLE001 - an unreadable record is the item's result
                yield item_id, exc
                continue
            if flt.matches(item):
                yield item_id, item

    def iter_items(self, dataset: Dataset | str, filters: Filters | Mapping[str, Any] | None = None) -> Iterator[Item]:
        """Iterate matching items lazily; unreadable records are logged and skipped.

        ``dataset`` is an entity, a name or an id; ``NotFoundError`` (at once) when there is no such dataset.
        """
        return _readable(self.iter_item_results(dataset, filters))

    def count_items(self, dataset: Dataset | str, filters: Filters | Mapping[str, Any] | None = None) -> int:
        """How many items match."""
        return sum(1 for _ in self.iter_items(dataset, filters))

    def count_by_subset(self, dataset: Dataset | str, subsets: Iterable[str]) -> dict[str, int]:
        """Items per named subset, plus ``"all"``, from one pass over the listing."""
        counts = dict.fromkeys(subsets, 0)
        counts["all"] = 0
        for item in self.iter_items(dataset):
            counts["all"] += 1
            for s in item.subsets:
                if s in counts and s != "all":
                    counts[s] += 1
        return counts

    def read_item(self, item: Item) -> bytes:
        """The item's bytes."""
        return self.store.get_bytes(layout.item_binary(item.dataset_id, item.id))

    def download_item(self, item: Item, dest: str | Path) -> Path:
        """Write the item's bytes to ``dest``; returns the path."""
        dest = Path(dest)
        self.store.get_file(layout.item_binary(item.dataset_id, item.id), dest)
        return dest

    # --- annotations --------------------------------------------------------------------

    @staticmethod
    def _check_ground_truth(annotations: AnnotationCollection) -> None:
        annotations.validate()
        for i, ann in enumerate(annotations):
            if ann.model is not None:
                raise ValidationError("AnnotationCollection", f"annotations[{i}].model", "ground truth must not carry model info")

    def set_ground_truth(self, item: Item, annotations: AnnotationCollection) -> None:
        """Replace the item's ground-truth annotations."""
        self._check_ground_truth(annotations)
        coll = AnnotationCollection(annotations=list(annotations), item_id=item.id)
        self.store.put_json(layout.ground_truth(item.dataset_id, item.id), coll.to_dict())

    def get_ground_truth(self, item: Item) -> AnnotationCollection:
        """The item's ground truth (empty when none); predictions are never included.

        A collection that names another item is a ``ValidationError``.
        """
        key = layout.ground_truth(item.dataset_id, item.id)
        try:
            data = self.store.get_json(key)
        except NotFoundError:
            return AnnotationCollection(item_id=item.id)
        coll = check_identity(AnnotationCollection.from_dict(data), key, item_id=item.id)
        return AnnotationCollection(annotations=coll.ground_truth(), item_id=item.id)

    def put_predictions(self, prediction: PredictionSet, dataset_id: str, *, validated: bool = False) -> None:
        """Write a model version's predictions on an item, replacing that version's earlier ones (atomic);
        the sets of the model's other versions stay.

        ``validated``: the caller has just validated ``prediction`` (the prediction engine's ``stamp`` does).
        """
        if not validated:
            prediction.validate()
        key = layout.predictions(dataset_id, prediction.item_id, prediction.model_id, prediction.model_version)
        self.store.put_json(key, prediction)

    def get_predictions(self, item: Item, model_id: str, version: int | None = None) -> PredictionSet | None:
        """The prediction set of model ``model_id`` at ``version`` on the item (None: of the latest version
        predicted on it), or None. A set the previous layout kept per model counts as the version it records.

        A set that names another item, model or version is a ``ValidationError``: it is no prediction of this one.
        """
        if version is None:
            versions = self.prediction_versions(item, model_id)
            if not versions:
                return None
            version = versions[-1]
        key = layout.predictions(item.dataset_id, item.id, model_id, version)
        try:
            data = self.store.get_json(key)
        except NotFoundError:
            legacy = self._legacy_predictions(item, model_id)
            return legacy if legacy is not None and legacy.model_version == version else None
        return check_identity(PredictionSet.from_dict(data), key, item_id=item.id, model_id=model_id, model_version=version)

    def _legacy_predictions(self, item: Item, model_id: str) -> PredictionSet | None:
        """The model's one set on the item as the previous layout kept it (``<model_id>.json``), or None."""
        key = layout.legacy_predictions(item.dataset_id, item.id, model_id)
        try:
            data = self.store.get_json(key)
        except NotFoundError:
            return None
        return check_identity(PredictionSet.from_dict(data), key, item_id=item.id, model_id=model_id)

    def prediction_versions(self, item: Item, model_id: str) -> list[int]:
        """The versions of model ``model_id`` with a prediction set on the item, ascending."""
        versions: set[int] = set()
        for obj in self.store.list(layout.predictions_prefix(item.dataset_id, item.id)):
            found = layout.prediction_set_of(obj.key)
            if found is None or found[0] != model_id:
                continue
            if found[1] is not None:
                versions.add(found[1])
                continue
            try:
                legacy = self._legacy_predictions(item, model_id)
            except (ValidationError, StoreError) as exc:  # unreadable: it is no version's set
                log.warning("item %s: the prediction set %s is not read: %s", item.id, obj.key, redact(str(exc)))
                continue
            if legacy is not None:
                versions.add(legacy.model_version)
        return sorted(versions)

    def predicted_versions(self, dataset: Dataset | str, model_id: str) -> list[int]:
        """The versions of model ``model_id`` with a prediction set on some item of the dataset, ascending
        (one listing of the dataset's annotations; a set of the previous layout is read for its version)."""
        versions: set[int] = set()
        for _, version in self._prediction_keys(self._dataset_id(dataset), model_id):
            if version is not None:
                versions.add(version)
        return sorted(versions)

    def _prediction_keys(self, dataset_id: str, model_id: str) -> Iterator[tuple[str, int | None]]:
        """``(key, version)`` of every prediction set of the model on the dataset's items; ``version`` is read
        from a set of the previous layout (None when it is unreadable)."""
        for obj in self.store.list(layout.annotations_prefix(dataset_id)):
            found = layout.prediction_set_of(obj.key)
            if found is None or found[0] != model_id:
                continue
            if found[1] is not None:
                yield obj.key, found[1]
                continue
            try:
                data = self.store.get_json(obj.key)
            except (NotFoundError, StoreError) as exc:  # gone, or unreadable: it is no version's set
                log.warning("the prediction set %s is not read: %s", obj.key, redact(str(exc)))
                continue
            version = data.get("model_version") if isinstance(data, dict) and data.get("model_id") == model_id else None
            yield obj.key, version if isinstance(version, int) and not isinstance(version, bool) else None

    def delete_predictions(self, item: Item, model_id: str, version: int | None = None) -> None:
        """Remove the model's prediction set at ``version`` from the item (None: every version's)."""
        if version is None:
            self.store.delete_prefix(layout.model_predictions_prefix(item.dataset_id, item.id, model_id))
            self.store.delete(layout.legacy_predictions(item.dataset_id, item.id, model_id))
            return
        self.store.delete(layout.predictions(item.dataset_id, item.id, model_id, version))
        try:
            legacy = self._legacy_predictions(item, model_id)
        except (ValidationError, StoreError):  # not this model's set, or unreadable: left alone
            return
        if legacy is not None and legacy.model_version == version:
            self.store.delete(layout.legacy_predictions(item.dataset_id, item.id, model_id))

    def delete_version_predictions(self, dataset: Dataset | str, model_id: str, version: int) -> int:
        """Remove the prediction sets of model ``model_id`` at ``version`` from every item of the dataset
        (the other versions' stay); returns how many went."""
        keys = [key for key, v in self._prediction_keys(self._dataset_id(dataset), model_id) if v == version]
        return len(map_all(self.store.delete, keys, self.pool, 4 * self.io_workers))

    def put_embedding(self, embedding: Embedding, dataset_id: str, *, validated: bool = False) -> None:
        """Write a model's embedding of an item, replacing that model's earlier one (atomic)."""
        if not validated:
            embedding.validate()
        self.store.put_json(layout.embedding(dataset_id, embedding.item_id, embedding.model_id), embedding)

    def get_embedding(self, item: Item, model_id: str) -> Embedding | None:
        """The model's embedding of the item, or None; one that names another item or model is a ``ValidationError``."""
        key = layout.embedding(item.dataset_id, item.id, model_id)
        try:
            data = self.store.get_json(key)
        except NotFoundError:
            return None
        return check_identity(Embedding.from_dict(data), key, item_id=item.id, model_id=model_id)

    def prediction_model_ids(self, item: Item) -> list[str]:
        """Ids of every model with predictions (of any version) on the item."""
        found = (layout.prediction_set_of(o.key) for o in self.store.list(layout.predictions_prefix(item.dataset_id, item.id)))
        return list(dict.fromkeys(f[0] for f in found if f is not None))

    def get_annotations(self, item: Item) -> AnnotationCollection:
        """Ground truth plus every model's predictions on the item (of the latest version predicted on it)."""
        coll = self.get_ground_truth(item)
        for model_id in self.prediction_model_ids(item):
            pred = self.get_predictions(item, model_id)
            if pred is not None:
                coll.annotations.extend(pred.annotations)
        return coll

    # --- models -------------------------------------------------------------------------

    def create_model(self, name: str, **fields: Any) -> Model:
        """Create a model with a unique name (``fields`` are ``Model`` fields; a name left by an interrupted delete is free); of creates of one name at once, exactly one succeeds."""
        check_name("Model", "name", name)
        model = Model(name=name, **fields)
        model.validate()
        self._create_named("model", name, layout.model_name(name), layout.model_record, model.id, model.to_dict())
        log.info("created model %s (%s)", name, model.id)
        return model

    def get_model(self, name_or_id: str) -> Model:
        """A model by id or by name."""
        model_id = self._resolve(name_or_id, layout.model_name, layout.model_record, "model")
        return self._load_model(model_id, name_or_id)

    def _load_model(self, model_id: str, name_or_id: str) -> Model:
        key = layout.model_record(model_id)
        data = self._get_record(key, name_or_id, "model")
        try:
            model = Model.from_dict(data)
        except ValidationError as exc:
            raise ValidationError("Model", exc.field, f"record {model_id} is invalid: {str(exc).split(': ', 1)[-1]}") from None
        check_identity(model, key, **_identity(model_id, name_or_id))
        if model.artifacts is not None:  # the current version's manifest, as the record holds it
            check_identity(model.artifacts, key, model_id=model_id, version=model.version)
        return model

    def list_models(self) -> list[Model]:
        """Every model, sorted by name (names left by an interrupted delete are skipped)."""
        found = self._list_named(layout.models_prefix(), self._load_model, "model")
        return sorted(found, key=lambda m: m.name)

    def update_model(self, model: Model, **changes: Any) -> Model:
        """Persist ``model`` with ``changes`` applied; returns the updated record.

        Its version, artifacts and aliases are the latest record's unless ``changes`` names them:
        only a commit or an alias moves them, never an update of a copy read before one.
        """
        return self._rewrite_model(model, lambda latest: replace(model, **{**{f: getattr(latest, f) for f in _MOVED_BY_THEIR_OWN}, **changes}))

    def modify_model(self, model: Model, change: Callable[[Model], Mapping[str, Any]]) -> Model:
        """Apply ``change(latest record)`` (the fields to set) to the model's latest record and persist it;
        returns it. One writer of a model's record at a time: no change is lost to another made meanwhile."""
        return self._rewrite_model(model, lambda latest: replace(latest, **change(latest)))

    def _rewrite_model(self, model: Model, make: Callable[[Model], Model]) -> Model:
        """``_rewrite`` of a model record, stamped ``updated_at``."""
        return self._rewrite("model", model, self.get_model, layout.model_record, lambda latest: replace(make(latest), updated_at=utc_now()))

    def set_status(self, model: Model, status: str, message: str | None = None) -> Model:
        """Record the model's status (and the error, for ``failed``) on the latest record."""
        return self.modify_model(model, lambda _: {"status": status, "status_message": message})

    def clone_model(self, model: Model, name: str, *, version: int | None = None, **changes: Any) -> Model:
        """A new model (new id, unique name) whose version 1 is ``model``'s ``version`` (default: its current one)."""
        fields = {
            "adapter": model.adapter,
            "configuration": dict(model.configuration),
            "labels": list(model.labels),
            "input_type": model.input_type,
            "output_type": model.output_type,
            "dataset_id": model.dataset_id,
            "subsets": dict(model.subsets),
        }
        fields.update(changes)
        clone = self.create_model(name, parent_model_id=model.id, **fields)
        source = self.get_manifest(model, version) if version is not None else model.artifacts
        if source is not None:
            # Copy the artifact files so the clone is independent of the parent.
            manifest = self.versions.copy_current(model, clone.id, 1, of=source)
            clone = self.update_model(clone, version=1, artifacts=manifest)
        return clone

    def delete_model(self, model: Model | str) -> tuple[int, int]:
        """Remove a model with its versions, checkpoints, evaluations, its prediction sets on every
        dataset and its prediction runs (those whose report names it); returns how many (sets, runs) went.

        Re-runnable, like ``delete_dataset``: the record goes first (from then on the model is
        gone, and a prediction run of it stops at its next batch), the name last. ``model`` may
        be a name or id; a name an interrupted delete left behind finishes that delete.
        """
        model_id, name = (model.id, model.name) if isinstance(model, Model) else self._model_to_delete(model)
        self.store.delete(layout.model_record(model_id))
        self.store.delete_prefix(layout.model_prefix(model_id))
        removed = self._delete_predictions_of(model_id), self._delete_runs_of(model_id)
        self._release_name(layout.model_name(name), model_id)
        return removed

    def _model_to_delete(self, name_or_id: str) -> tuple[str, str]:
        """``(id, name)`` of a model, or of one whose record an interrupted delete removed (its name is left)."""
        try:
            model = self.get_model(name_or_id)
            return model.id, model.name
        except NotFoundError:
            return self._resolve(name_or_id, layout.model_name, layout.model_record, "model"), name_or_id

    def _delete_predictions_of(self, model_id: str) -> int:
        """Delete the model's prediction sets and embeddings on the items of every dataset; returns how many."""
        keys = (
            obj.key
            for ds_id in self._dataset_ids()
            for obj in self.store.list(layout.annotations_prefix(ds_id))
            if layout.is_predictions_of(obj.key, model_id)
        )
        return len(map_all(self.store.delete, keys, self.pool, 4 * self.io_workers))

    def _delete_runs_of(self, model_id: str) -> int:
        """Delete the stored prediction runs whose report names the model; returns how many."""
        runs = set()
        for obj in self.store.list(layout.runs_prefix()):
            run_id = layout.run_report_of(obj.key)
            if run_id is None or run_id in runs:
                continue
            try:
                report = self.store.get_json(obj.key)
            except (NotFoundError, StoreError) as exc:
                log.warning("cannot read the report %s (its run is kept): %s", obj.key, redact(str(exc)))
                continue
            if isinstance(report, dict) and (report.get("model_id") == model_id or model_id in (report.get("model_ids") or ())):
                runs.add(run_id)
        for run_id in sorted(runs):
            self.store.delete_prefix(layout.run_prefix(run_id))
        return len(runs)

    def _dataset_ids(self) -> list[str]:
        """The ids every dataset name entry points at (datasets being deleted included)."""
        ids = []
        for obj in self.store.list(layout.datasets_prefix()):
            try:
                entity_id = _entry_id(self.store.get_json(obj.key))
            except NotFoundError:
                continue
            if entity_id is not None:
                ids.append(entity_id)
        return ids

    # --- artifacts ----------------------------------------------------------------------

    def upload_artifacts(self, model: Model, local_dir: str | Path, *, base_version: int | None = None, **changes: Any) -> Model:
        """Upload ``local_dir`` as the model's next version and make it current.

        Compare-and-swap on ``base_version`` (default: ``model.version``, the version the
        caller holds): if the model is at another version, or another writer is making the
        version after it, the upload is refused with ``VersionConflictError`` and nothing
        becomes visible. Files go first, then the version manifest, then the model record:
        a reader sees the previous version or the complete new one, never a partial one.
        """
        base = model.version if base_version is None else base_version
        manifest, updated = self._commit_version(model, base, "", lambda claim: self.versions.publish(claim, model.name, local_dir), changes)
        log.info("uploaded %d artifact file(s), %d bytes, as %s version %d", len(manifest.files), manifest.total_size, model.name, updated.version)
        return updated

    def stage_artifacts(self, model: Model, local_dir: str | Path, run_id: str) -> ArtifactManifest:
        """Upload ``local_dir`` as a staged candidate of ``model`` (not a version yet).

        ``commit_staged`` turns it into the next version; until then readers never see it.
        """
        return self.versions.stage(model, local_dir, run_id)

    def commit_staged(self, model: Model, run_id: str, *, base_version: int | None = None, **changes: Any) -> Model:
        """Make a staged candidate the model's next version (files copied, manifest last, record after).

        Compare-and-swap on ``base_version`` (the version the run trained from; default
        ``model.version``), as ``upload_artifacts``.
        """
        staged = self.versions.staged(model, run_id)
        base = model.version if base_version is None else base_version
        _, updated = self._commit_version(
            model, base, run_id, lambda claim: self.versions.publish_staged(claim, model.name, run_id, staged), changes
        )
        self.versions.drop_staged(model.id, run_id)
        log.info("committed staged run %s of %s as version %d", run_id, model.name, updated.version)
        return updated

    def _commit_version(
        self, model: Model, base: int, run_id: str, write: Callable[[VersionClaim], ArtifactManifest], changes: Mapping[str, Any]
    ) -> tuple[ArtifactManifest, Model]:
        """Claim the version after ``base``, ``write`` its files and manifest, then point the record at it.

        ``VersionConflictError`` (naming both versions) when the model is no longer at
        ``base``, checked before the claim, after it and right before the record.
        """
        self._check_base(model, base)
        try:
            claim = self.versions.claims.reserve(model.id, model.name, base, run_id)
        except VersionConflictError:
            self._check_base(model, base)  # the clearer refusal when the other writer has finished
            raise
        try:
            self._check_base(model, base)
            manifest = write(claim)
            try:
                updated = self._rewrite_model(
                    model, lambda latest: replace(self._at_base(latest, model, base), version=claim.version, artifacts=manifest, **changes)
                )
            except ConflictError:
                self.versions.discard(model.id, claim.version)  # ours (the claim held): no orphan left to list
                raise
        finally:
            self.versions.claims.release(claim)
        return manifest, updated

    def _check_base(self, model: Model, base: int) -> Model:
        """The model's latest record; ``VersionConflictError`` if it is no longer at version ``base``."""
        return self._at_base(self.get_model(model.id), model, base)

    def _at_base(self, current: Model, model: Model, base: int) -> Model:
        """``current`` (``model``'s latest record); ``VersionConflictError`` if it is not at version ``base``."""
        if current.version != base:
            raise VersionConflictError(
                f"model {model.name!r} is at version {current.version}, not at version {base} this write started from: "
                f"another writer made version {current.version} meanwhile; it stays, nothing of this write was kept"
            )
        return current

    def get_manifest(self, model: Model, version: int | None = None) -> ArtifactManifest:
        """The manifest of ``version`` (default: the model's current one)."""
        return self.versions.manifest(model, version)

    def download_artifacts(self, model: Model, dest_dir: str | Path, version: int | None = None) -> ArtifactManifest:
        """Download a version's files into ``dest_dir``, verifying every SHA-256 digest."""
        return self.versions.download(model, dest_dir, version)

    def set_alias(self, model: Model, alias: str, version: int | None = None, *, forward_only: bool = False) -> Model:
        """Point ``alias`` (e.g. ``production``) at a version (default: the current one).

        ``forward_only``: ``VersionConflictError`` when the alias points at a newer version (it stays there).
        """

        def change(latest: Model) -> dict[str, Any]:
            target = latest.version if version is None else version
            if target < 1:
                raise ValidationError("Model", "aliases", f"model {model.name!r} has no version to alias")
            held = latest.aliases.get(alias)
            if forward_only and isinstance(held, int) and held > target:
                raise VersionConflictError(
                    f"alias {alias!r} of model {latest.name!r} points at version {held}, newer than version {target}: it stays there"
                )
            self.get_manifest(latest, target)  # the version must exist
            return {"aliases": {**latest.aliases, alias: target}}

        return self.modify_model(model, change)

    def unset_alias(self, model: Model, alias: str) -> Model:
        """Remove ``alias`` from the model; ``NotFoundError`` if it has no such alias."""

        def change(latest: Model) -> dict[str, Any]:
            if alias not in latest.aliases:
                raise NotFoundError(f"model {model.name!r} has no alias {alias!r} (has: {', '.join(sorted(latest.aliases)) or 'none'})")
            return {"aliases": {k: v for k, v in latest.aliases.items() if k != alias}}

        return self.modify_model(model, change)

    def list_versions(self, model: Model) -> list[ArtifactManifest]:
        """The manifests of the model's versions, oldest first (a version whose manifest is gone is left out)."""
        return self.versions.manifests(model)

    def models_of_dataset(self, dataset: Dataset) -> list[Model]:
        """The models whose training dataset is ``dataset``."""
        return [m for m in self.list_models() if m.dataset_id == dataset.id]

    # --- evaluations --------------------------------------------------------------------

    def write_evaluation(self, model: Model, metrics: Mapping[str, Any], report_html: str, report_md: str | None = None) -> str:
        """Store an evaluation of the model's current version; returns its key prefix."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        prefix = layout.evaluation_prefix(model.id, model.version, stamp)
        self.store.put_json(layout.evaluation_file(prefix, layout.EVALUATION_METRICS), dict(metrics))
        self.store.put_bytes(layout.evaluation_file(prefix, layout.EVALUATION_REPORT_HTML), report_html.encode(), "text/html")
        if report_md is not None:
            self.store.put_bytes(layout.evaluation_file(prefix, layout.EVALUATION_REPORT_MARKDOWN), report_md.encode(), "text/markdown")
        return prefix

    def latest_evaluation(self, model: Model, version: int) -> dict[str, Any] | None:
        """The metrics of the latest evaluation of ``version`` of the model, or None when it has none.

        Metrics that name another model or version (copied there) are skipped with a warning.
        """
        prefix = layout.evaluations_prefix(model.id, version)
        keys = [o.key for o in self.store.list(prefix) if o.key.endswith("/" + layout.EVALUATION_METRICS)]
        for key in sorted(keys, reverse=True):  # stamps sort by time
            metrics = self.store.get_json(key)
            if not isinstance(metrics, dict):
                log.warning("skipping the evaluation at %s: not a JSON object", key)
                continue
            # metrics name their model and version (those stored by older releases may not)
            error = mismatch(metrics, key, **{k: v for k, v in (("model_id", model.id), ("model_version", version)) if k in metrics})
            if error is None:
                return metrics
            log.warning("skipping the evaluation at %s: %s", key, error)
        return None

    def list_evaluations(self, model: Model) -> list[tuple[str, dict[str, Any]]]:
        """``(key prefix, metrics)`` of every evaluation of every version of the model, oldest first."""
        keys = sorted(
            (layout.evaluation_stamp(o.key), o.key)
            for o in self.store.list(layout.all_evaluations_prefix(model.id))
            if o.key.endswith("/" + layout.EVALUATION_METRICS)
        )
        return [(key[: -len(layout.EVALUATION_METRICS)], self.store.get_json(key)) for _, key in keys]

    # --- runs ---------------------------------------------------------------------------

    def iter_run_reports(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(run_id, report)`` of every stored prediction run (a ``PredictionReport`` dict or a sharded run's summary)."""
        for obj in self.store.list(layout.runs_prefix()):
            run_id = layout.run_report_of(obj.key)
            if run_id is not None:
                yield run_id, self.store.get_json(obj.key)

    def get_run_report(self, run_id: str) -> dict[str, Any]:
        """The stored report of prediction run ``run_id`` (its summary, for a sharded pipeline run)."""
        layout.check_name("run", run_id)
        for key in (layout.prediction_summary(run_id), layout.prediction_report(run_id)):
            try:
                return self.store.get_json(key)
            except NotFoundError:
                continue
        raise NotFoundError(f"no prediction run {run_id!r} in {self.store.uri} (`model-adapter runs list` lists them)")

    # --- internals ----------------------------------------------------------------------

    def _resolve(self, name_or_id: str, name_key: Any, record_key: Any, what: str) -> str:
        if not isinstance(name_or_id, str) or not name_or_id:
            raise ValidationError(what, "name", f"expected a {what} name or id, got {name_or_id!r}")
        try:
            if self.store.exists(record_key(name_or_id)):
                return name_or_id
        except (StoreError, ValueError):
            pass  # not a valid id: try it as a name
        try:
            entry = self.store.get_json(name_key(name_or_id))
        except (NotFoundError, ValueError):
            raise NotFoundError(f"no {what} named or with id {name_or_id!r} in {self.store.uri}") from None
        entity_id = _entry_id(entry)
        if entity_id is None:
            raise StoreError(f"{self.store.uri}: the name entry of {what} {name_or_id!r} is corrupt: {entry!r}")
        return entity_id

    def _get_record(self, key: str, name_or_id: str, what: str) -> Any:
        """The record at ``key``; a name whose record is gone is named as left by an interrupted delete."""
        try:
            return self.store.get_json(key)
        except NotFoundError:
            raise NotFoundError(
                f"no {what} named or with id {name_or_id!r} in {self.store.uri} "
                f"(a name left by an interrupted delete: listings skip it and the name is free to reuse)"
            ) from None

    def _named_id(self, name_key: str, record_key: Callable[[str], str]) -> str | None:
        """The id a name entry points at if that record exists; None when the name is free."""
        try:
            entity_id = _entry_id(self.store.get_json(name_key))
        except NotFoundError:
            return None
        if entity_id is None or not self.store.exists(record_key(entity_id)):
            return None
        return entity_id

    def _list_named(self, prefix: str, load: Callable[[str, str], E], what: str) -> list[E]:
        """``load(id, name)`` for every name under ``prefix``; names with no record are logged and skipped."""
        found = []
        for obj in self.store.list(prefix):
            name = obj.key[len(prefix) : -len(".json")]
            try:
                entity_id = _entry_id(self.store.get_json(obj.key))
                if entity_id is None:
                    raise NotFoundError(f"name entry {obj.key!r} names no id")
                found.append(load(entity_id, name))
            except NotFoundError:  # the entry or its record is gone (an interrupted or concurrent delete)
                log.warning("skipping %s name %r: it names no record (left by an interrupted delete; the name is free)", what, name)
            except RecordMismatchError as exc:  # an entry copied from another name: that record is listed under its own
                log.warning("skipping %s name %r: %s", what, name, exc)
        return found

    def _release_name(self, name_key: str, entity_id: str) -> None:
        """Delete a name entry if it still points at ``entity_id`` (a re-run never frees a reused name)."""
        try:
            if _entry_id(self.store.get_json(name_key)) not in (None, entity_id):
                return
        except NotFoundError:
            return
        self.store.delete(name_key)


def _identity(entity_id: str, name_or_id: str) -> dict[str, str]:
    """What a dataset or model record read for ``name_or_id`` must say: its id, and the name it was found by."""
    return {"id": entity_id} if name_or_id == entity_id else {"id": entity_id, "name": name_or_id}


def _readable(results: Iterable[tuple[str, Item | BaseException]]) -> Iterator[Item]:
    """The items of ``iter_item_results``; each unreadable record is logged by item id and skipped."""
    for item_id, result in results:
        if isinstance(result, BaseException):
            log.error("skipping item %s: %s", item_id, result)
            continue
        yield result


def path_item_id(dataset_id: str, path: str) -> str:
    """The id of the item at ``path`` of dataset ``dataset_id`` (32 hex digits): every writer of one path names one item."""
    return hashlib.sha256(f"{dataset_id}\n{path}".encode()).hexdigest()[:32]


#: Why a name cannot be an item path (the reasons an import counts skipped entries by).
NOT_UTF8 = "name is not UTF-8 (cannot be a store key)"
CONTROL_CHARACTER = "control character or backslash in the name (cannot be a store key)"
NOT_RELATIVE = "not a relative path inside the dataset"
TOO_LONG = "name too long for a store key"


def item_path_problem(dataset_id: str, path: object, check_key: Callable[[object], str] = validate_key) -> str | None:
    """Why ``path`` cannot be an item path of dataset ``dataset_id`` (one of the reasons above), None when it can.

    ``check_key`` is the store's key check (``ObjectStore.check_key``); the default takes
    what every store takes. The item's path entry (``layout.item_path``) is the key the
    path becomes: its file name gets ``.json``, so the longest file name is 250 bytes.
    """
    if not isinstance(path, str) or not path:
        return NOT_RELATIVE
    try:
        path.encode()
    except UnicodeEncodeError:
        return NOT_UTF8
    if "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return CONTROL_CHARACTER
    try:
        check_relative_path("Item", "path", path)
    except ValidationError:
        return NOT_RELATIVE
    try:
        check_key(layout.item_path(dataset_id, path))
    except InvalidKeyError:
        return TOO_LONG
    return None


def _entry_id(entry: Any) -> str | None:
    """The id in a name or path entry (``{"id": ...}``), or None when the entry is malformed."""
    entity_id = entry.get("id") if isinstance(entry, dict) else None
    try:
        check_path_part("entry", "id", entity_id)
    except ValidationError:
        return None
    return entity_id
