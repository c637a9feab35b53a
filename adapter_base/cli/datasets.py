"""``model-adapter dataset import|list|show``."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..entities import AnnotationCollection, Dataset
from ..errors import AdapterError, ConflictError, NotFoundError
from ..registry import Registry
from ._common import add_store_option, open_registry, print_json

KNOWN_SUBSETS = ("train", "validation", "test")
#: ``Dataset.metadata`` key recording a directory import: its source and whether it finished.
IMPORT_KEY = "import"
#: Skipped entries listed by name in the command's output (the rest are counted).
SHOW_SKIPPED = 20


class DatasetImportError(AdapterError):
    """A directory import stopped at a file; the message names it. Rerunning resumes."""


@dataclass
class ImportResult:
    """What ``import_directory`` did: the dataset, files added now, and entries skipped with why."""

    dataset: Dataset
    added: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def scan_directory(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The files under ``root`` to import (sorted relative POSIX paths) and the entries skipped, with why.

    Hidden files and folders (``.git``, ``.DS_Store``) are skipped, and so is every
    symbolic link that leads out of ``root`` or to a folder: nothing outside the folder
    is ever read. A link to a file inside it is imported.
    """
    top = root.resolve()
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    pending = [(os.fspath(root), "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                is_dir = entry.is_dir(follow_symlinks=False)
                if entry.name.startswith("."):
                    skipped.append((rel + "/" if is_dir else rel, "hidden"))
                elif entry.is_symlink():
                    target = Path(entry.path).resolve()
                    if top not in target.parents:
                        skipped.append((rel, "symbolic link to outside the folder"))
                    elif not target.is_file():
                        skipped.append((rel, "symbolic link to a folder or to nothing"))
                    else:
                        files.append(rel)
                elif is_dir:
                    pending.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    files.append(rel)
                else:
                    skipped.append((rel, "not a regular file"))
    return sorted(files), sorted(skipped)


def _subsets_and_label(rel: str) -> tuple[list[str], str | None]:
    """``[<subset>/]<label>/<file>``: the subset (if a known one) and the ground-truth label (if any)."""
    parts = rel.split("/")
    subsets = [parts[0]] if parts[0] in KNOWN_SUBSETS else []
    rest = parts[len(subsets) :]
    return subsets, rest[0] if len(rest) > 1 else None


def import_directory(registry: Registry, root: Path, name: str) -> ImportResult:
    """Import every file under ``root``: ``[<subset>/]<label>/<file>`` gives subset and ground-truth label.

    Resumable: the dataset records its source until the import finishes, and rerunning
    the same import adds only the files not there yet. A failure names the file.
    """
    files, skipped = scan_directory(root)
    labels = sorted({label for label in (_subsets_and_label(rel)[1] for rel in files) if label is not None})
    source = str(root.resolve())
    done: set[str] = set()
    try:
        ds = registry.get_dataset(name)
    except NotFoundError:
        ds = registry.create_dataset(name, labels=labels, metadata={IMPORT_KEY: {"source": source, "complete": False}})
    else:
        state = ds.metadata.get(IMPORT_KEY)
        if not (isinstance(state, dict) and state.get("source") == source and state.get("complete") is False):
            raise ConflictError(f"a dataset named {name!r} already exists (it is not an unfinished import of {source}): choose another --name")
        done = {item.path for item in registry.iter_items(ds)}
    todo = [rel for rel in files if rel not in done]
    for n, rel in enumerate(tqdm(todo, desc=f"import {name}", unit="file")):
        subsets, label = _subsets_and_label(rel)
        gt = None
        if label is not None:
            gt = AnnotationCollection()
            gt.add_classification(label)
        try:
            registry.add_item(ds, rel, root / rel, subsets=subsets, annotations=gt)
        except Exception as exc:
            raise DatasetImportError(
                f"importing {rel!r} from {source} into dataset {name!r} failed: {type(exc).__name__}: {exc} "
                f"({len(done) + n} of {len(files)} files are in; run the same command again to import the rest)"
            ) from exc
    ds.labels = labels
    ds.metadata[IMPORT_KEY] = {"source": source, "complete": True}
    registry.update_dataset(ds)
    return ImportResult(ds, len(todo), skipped)


def cmd_import(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        skipped: list[tuple[str, str]] = []
        if args.source == "digits":
            from examples.digits.dataset import import_digits

            ds = import_digits(registry, args.name or "digits", seed=args.seed, limit=args.limit)
        else:
            root = Path(args.source)
            if not root.is_dir():
                raise FileNotFoundError(f"dataset source {args.source!r} is neither 'digits' nor a directory")
            result = import_directory(registry, root, args.name or root.resolve().name)
            ds, skipped = result.dataset, result.skipped
        counts = registry.count_by_subset(ds, KNOWN_SUBSETS)
        del counts["all"]
        print(f"imported dataset {ds.name} ({ds.id}) into {registry.store.uri}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if skipped:
            print(f"skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'}:")
            for rel, why in skipped[:SHOW_SKIPPED]:
                print(f"  {rel}: {why}")
            if len(skipped) > SHOW_SKIPPED:
                print(f"  ... and {len(skipped) - SHOW_SKIPPED} more")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        for ds in registry.list_datasets():
            print(f"{ds.name}\t{ds.id}\t{len(ds.labels)} labels")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        ds = registry.get_dataset(args.dataset)
        info = ds.to_dict()
        info["items"] = registry.count_by_subset(ds, KNOWN_SUBSETS)
        print_json(info)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="import, list and show datasets")
    dsub = p.add_subparsers(dest="dataset_cmd", required=True)
    imp = dsub.add_parser("import", help="import 'digits' (scikit-learn's handwritten digits) or a directory [<subset>/]<label>/<file>")
    imp.add_argument("source", help="'digits' or a directory")
    imp.add_argument("--name", help="dataset name (default: digits / the directory name)")
    imp.add_argument("--seed", type=int, default=0, help="split seed for digits")
    imp.add_argument("--limit", type=int, default=None, help="import only the first N digits")
    add_store_option(imp)
    imp.set_defaults(func=cmd_import)
    ls = dsub.add_parser("list", help="list datasets")
    add_store_option(ls)
    ls.set_defaults(func=cmd_list)
    show = dsub.add_parser("show", help="show a dataset and its item counts")
    show.add_argument("dataset", help="name or id")
    add_store_option(show)
    show.set_defaults(func=cmd_show)
