"""``model-adapter dataset import|list|show``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from ..entities import AnnotationCollection
from ..registry import Registry
from ._common import add_store_option, open_registry, print_json

KNOWN_SUBSETS = ("train", "validation", "test")


def import_directory(registry: Registry, root: Path, name: str) -> int:
    """Import every file under ``root``: ``[<subset>/]<label>/<file>`` gives subset and ground-truth label."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    labels = set()
    ds = registry.create_dataset(name)
    for path in tqdm(files, desc=f"import {name}", unit="file"):
        parts = path.relative_to(root).parts
        subsets = [parts[0]] if parts[0] in KNOWN_SUBSETS else []
        rest = parts[len(subsets) :]
        gt = None
        if len(rest) > 1:
            gt = AnnotationCollection()
            gt.add_classification(rest[0])
            labels.add(rest[0])
        registry.add_item(ds, path.relative_to(root).as_posix(), path, subsets=subsets, annotations=gt)
    ds.labels = sorted(labels)
    registry.update_dataset(ds)
    return len(files)


def cmd_import(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        if args.source == "digits":
            from examples.digits.dataset import import_digits

            ds = import_digits(registry, args.name or "digits", seed=args.seed, limit=args.limit)
        else:
            root = Path(args.source)
            if not root.is_dir():
                raise FileNotFoundError(f"dataset source {args.source!r} is neither 'digits' nor a directory")
            import_directory(registry, root, args.name or root.name)
            ds = registry.get_dataset(args.name or root.name)
        counts = registry.count_by_subset(ds, KNOWN_SUBSETS)
        del counts["all"]
        print(f"imported dataset {ds.name} ({ds.id}) into {registry.store.uri}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
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
