"""Write an ``ImportPlan`` into a dataset: resumable, and idempotent when the same source is imported again."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from tqdm import tqdm

from ..concurrency import ordered_map
from ..entities import AnnotationCollection, Dataset, Item
from ..errors import AdapterError, ConflictError, NotFoundError
from ..registry import DuplicatePath, Registry
from ..storage.digest import sha256_file
from .plan import ImportPlan, PlannedItem, media_kind
from .verify import image_problem

#: ``Dataset.metadata`` key recording an import: its source, format and whether it finished.
IMPORT_KEY = "import"
#: ``Item.metadata`` key holding the digests an import compares on a rerun.
ITEM_IMPORT_KEY = "import"
#: Conflicting paths named in the error (the rest are counted).
SHOW_CONFLICTS = 10
#: Why an entry is skipped whose path is a folder of an item already in the dataset, or below one's file.
CLASHES_WITH_AN_ITEM = "a file or folder of an item already in the dataset (a path is a file or a folder, not both)"

OnConflict = Literal["fail", "skip"]


class DatasetImportError(AdapterError):
    """An import stopped at a file; the message names it. Rerunning resumes."""


@dataclass
class ImportResult:
    """What an import did: the dataset, items added now, entries skipped (path, why), items already there,
    differing items kept, the duplicate items removed (several at one path, left by an older version),
    and the broken images skipped (path, why; also in ``skipped``)."""

    dataset: Dataset
    added: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    already_there: int = 0
    conflicts_kept: int = 0
    duplicates_removed: list[DuplicatePath] = field(default_factory=list)
    broken: list[tuple[str, str]] = field(default_factory=list)


def annotations_digest(annotations: AnnotationCollection | None) -> str | None:
    """SHA-256 of the ground truth's content (types, labels, coordinates, attributes; not the random ids)."""
    if annotations is None:
        return None
    rows = sorted(
        json.dumps([a.type, a.label, a.coordinates, a.attributes], sort_keys=True, default=str) for a in annotations
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _differences(registry: Registry, planned: PlannedItem, item: Item, compare_subsets: bool) -> list[str]:
    """What differs between a planned file and the item already at its path (empty when they are the same)."""
    recorded = item.metadata.get(ITEM_IMPORT_KEY) if isinstance(item.metadata.get(ITEM_IMPORT_KEY), dict) else {}
    file_digest = sha256_file(planned.file)
    stored_digest = recorded.get("sha256") or hashlib.sha256(registry.read_item(item)).hexdigest()
    out = []
    if stored_digest != file_digest:
        out.append("file content")
    gt_digest = recorded.get("annotations") if "annotations" in recorded else annotations_digest(registry.get_ground_truth(item))
    if gt_digest != annotations_digest(planned.annotations or AnnotationCollection()):
        out.append("ground truth")
    if compare_subsets and sorted(item.subsets) != sorted(planned.subsets):
        out.append(f"subsets {item.subsets} -> {planned.subsets}")
    return out


def _open_dataset(registry: Registry, plan: ImportPlan, name: str) -> Dataset:
    """The dataset to import into (created when missing); an existing one must come from the same source."""
    try:
        ds = registry.get_dataset(name)
    except NotFoundError:
        state = {"source": plan.source, "format": plan.format, "complete": False}
        try:
            created = registry.create_dataset(name, labels=plan.labels, metadata={IMPORT_KEY: state})
        except ConflictError:  # a concurrent import created it meanwhile
            created = None
        ds = registry.get_dataset(name)
        if created is not None and created.id == ds.id:
            return ds
        if created is not None:
            registry.delete_dataset(created)  # a concurrent import created the dataset too, and its name entry came last
    state = ds.metadata.get(IMPORT_KEY)
    if not (isinstance(state, dict) and state.get("source") == plan.source and state.get("format", "folder") == plan.format):
        origin = f"imported from {state.get('source')}" if isinstance(state, dict) and state.get("source") else "not made by an import"
        raise ConflictError(
            f"a dataset named {name!r} already exists ({origin}); it is not an import of {plan.source} "
            f"(finished or unfinished) and a different source is never merged into it: choose another --name"
        )
    return ds


def apply_plan(
    registry: Registry,
    plan: ImportPlan,
    name: str,
    *,
    on_conflict: OnConflict = "fail",
    keep_broken: bool = False,
    progress: bool = True,
) -> ImportResult:
    """Add the plan's items to dataset ``name`` (created when missing) and record the import as complete.

    Rerunning the same import adds only the files not there yet: a path already in the
    dataset with the same content and ground truth is counted as already there. A path
    whose content differs stops the import before anything is written, unless
    ``on_conflict="skip"`` keeps what the dataset has. A failure names the file.

    Every image about to be added is decoded in full first, on the registry's I/O pool while
    earlier files upload; one that does not decode is skipped (``ImportResult.broken``) unless
    ``keep_broken``. Files already in the dataset are not decoded again.

    Any number of imports of one source may run at once: each path ends with one item.
    A path that no key of this store can hold is skipped (``ImportResult.skipped``) before
    anything is written; several items at one path (left by an older version) are
    reduced to one (``ImportResult.duplicates_removed``).
    """
    for _ in range(3):
        try:
            ds = _open_dataset(registry, plan, name)
        except NotFoundError:
            continue  # the dataset its name entry held was deleted before its record was read: look again
        try:
            result = _apply(registry, plan, ds, name, on_conflict, keep_broken, progress)
        except AdapterError:
            if _named_id(registry, name) == ds.id:
                raise
            # The import that created this dataset deleted it meanwhile, another's name entry having come last:
            # what this import wrote into it since is removed, and it goes on in the dataset the name holds.
            registry.delete_dataset(ds)
            continue
        if _named_id(registry, name) == result.dataset.id:
            return result
        # Two imports created the dataset at once and the other's name entry came last: import into that one.
        registry.delete_dataset(result.dataset)
    raise DatasetImportError(f"dataset {name!r} was created or replaced by other imports three times while importing {plan.source}; run the same command again")


def _named_id(registry: Registry, name: str) -> str | None:
    """The id of the dataset named ``name`` now; None when there is none."""
    try:
        return registry.get_dataset(name).id
    except NotFoundError:
        return None


def _checked(planned: PlannedItem, verify: bool) -> tuple[str, str | None]:
    """The file's SHA-256 and, with ``verify``, why its image is broken (None when it decodes or is not an image)."""
    problem = None
    if verify:
        problem = planned.broken or (image_problem(planned.file) if media_kind(planned.path) == "image" else None)
    return sha256_file(planned.file), problem


def _apply(
    registry: Registry, plan: ImportPlan, ds: Dataset, name: str, on_conflict: OnConflict, keep_broken: bool, progress: bool
) -> ImportResult:
    skipped = list(plan.skipped)
    planned_items: list[PlannedItem] = []
    for planned in plan.items:
        problem = registry.path_problem(ds.id, planned.path)
        if problem is None:
            planned_items.append(planned)
        else:
            skipped.append((planned.path, problem))
    existing, repairs = registry.remove_duplicate_paths(ds, registry.iter_items(ds))
    todo: list[PlannedItem] = []
    conflicts: list[tuple[str, list[str]]] = []
    already = 0
    for planned in planned_items:
        item = existing.get(planned.path)
        if item is None:
            todo.append(planned)
            continue
        diff = _differences(registry, planned, item, compare_subsets=plan.split is None)
        if diff:
            conflicts.append((planned.path, diff))
        else:
            already += 1
    if conflicts and on_conflict == "fail":
        shown = "; ".join(f"{path}: {', '.join(diff)} differ" for path, diff in conflicts[:SHOW_CONFLICTS])
        more = f"; and {len(conflicts) - SHOW_CONFLICTS} more" if len(conflicts) > SHOW_CONFLICTS else ""
        raise ConflictError(
            f"{len(conflicts)} file(s) of {plan.source} differ from the items already at the same path in dataset "
            f"{name!r} ({shown}{more}); nothing was written. To keep the dataset's items and add only the new files, "
            f"rerun with --on-conflict skip; to take the new versions, import into a new dataset with --name"
        )
    if set(plan.labels) - set(ds.labels):
        ds = registry.modify_dataset(ds, lambda latest: {"labels": sorted(set(latest.labels) | set(plan.labels))})
    added = 0
    broken: list[tuple[str, str]] = []
    # Files are hashed and checked on the I/O pool, a window ahead of the upload of the file before.
    checked = ordered_map(lambda p: _checked(p, not keep_broken), todo, pool=registry.pool, window=2 * registry.io_workers)
    for n, (planned, check) in enumerate(tqdm(checked, total=len(todo), desc=f"import {name}", unit="file", disable=not progress)):
        if isinstance(check, BaseException):
            raise DatasetImportError(_failed(planned, plan, name, check, len(planned_items) - len(todo) + n)) from check
        digest, problem = check
        if problem is not None:
            broken.append((planned.path, problem))
            continue
        metadata = {
            **planned.metadata,
            ITEM_IMPORT_KEY: {"sha256": digest, "annotations": annotations_digest(planned.annotations or AnnotationCollection())},
        }
        try:
            registry.add_item(ds, planned.path, planned.file, subsets=planned.subsets, metadata=metadata, annotations=planned.annotations)
            added += 1
        except ConflictError as exc:
            # Another import added this path meanwhile, or an item sits at a folder above it or below it.
            item = _item_at(registry, ds, planned.path)
            if item is None:
                skipped.append((planned.path, CLASHES_WITH_AN_ITEM))
                continue
            diff = _differences(registry, planned, item, compare_subsets=plan.split is None)
            if diff == []:
                already += 1
            elif on_conflict == "skip":
                conflicts.append((planned.path, diff))
            else:
                why = f"another import added it meanwhile and its {', '.join(diff)} differ"
                raise DatasetImportError(_failed(planned, plan, name, why, len(planned_items) - len(todo) + n)) from exc
        except Exception as exc:
            raise DatasetImportError(_failed(planned, plan, name, exc, len(planned_items) - len(todo) + n)) from exc
    done = {"source": plan.source, "format": plan.format, "complete": True}
    ds = registry.modify_dataset(ds, lambda latest: {"metadata": {**latest.metadata, IMPORT_KEY: done}})
    return ImportResult(
        ds, added, skipped + broken, already_there=already, conflicts_kept=len(conflicts), duplicates_removed=repairs, broken=broken
    )


def _item_at(registry: Registry, ds: Dataset, path: str) -> Item | None:
    """The item at ``path`` of ``ds``, None when there is none."""
    try:
        return registry.find_item(ds, path)
    except NotFoundError:
        return None


def _failed(planned: PlannedItem, plan: ImportPlan, name: str, why: BaseException | str, done: int) -> str:
    """The message of an import that stopped at ``planned``: the file, why, and how many are in."""
    cause = f"{type(why).__name__}: {why}" if isinstance(why, BaseException) else why
    return (
        f"importing {planned.path!r} from {plan.source} into dataset {name!r} failed: {cause} "
        f"({done} of {len(plan.items)} files are in; run the same command again to import the rest)"
    )
