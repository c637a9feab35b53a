"""``model-adapter dataset import|list|show|items|delete``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..importers import FORMATS, KNOWN_SUBSETS, apply_plan, parse_split, plan_import
from ..importers.plan import SHOW_SKIPPED, shown_path, skipped_lines
from ..errors import ConflictError, ValidationError
from ..flows.preflight import item_census, no_match_message
from ._common import add_json_option, add_store_option, confirm, item_filters, open_registry, print_json, print_table
from .plugins import dataset_source


def default_name(args: argparse.Namespace) -> str:
    """The dataset name when ``--name`` is not given: the source's folder (or CSV file) name."""
    if args.source is None:
        return Path(os.path.commonpath([Path(args.images).resolve(), Path(args.annotations).resolve()])).name
    source = Path(args.source).resolve()
    return source.stem if source.is_file() else source.name


def cmd_import(args: argparse.Namespace) -> int:
    source = dataset_source(args.source) if args.source else None  # a named source such as 'digits'
    if source is not None:
        with open_registry(args, create=True) as registry:
            ds = source(registry, args.name or args.source, seed=args.seed, limit=args.limit)
            counts = registry.count_by_subset(ds, KNOWN_SUBSETS)
            del counts["all"]
            print(f"imported dataset {ds.name} ({ds.id}) into {registry.store.uri}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    plan = plan_import(
        Path(args.source) if args.source else None,
        format=args.format,
        images=Path(args.images) if args.images else None,
        annotations=Path(args.annotations) if args.annotations else None,
        split=parse_split(args.split) if args.split else None,
        seed=args.seed,
    )
    shown_before = bool(args.dry_run or plan.warnings())
    if shown_before:
        print(plan.summary())
        for line in skipped_lines(plan.skipped):
            print(line)
    if args.dry_run:
        print("dry run: nothing was written")
        return 0
    name = args.name or default_name(args)
    with open_registry(args, create=True) as registry:
        result = apply_plan(registry, plan, name, on_conflict=args.on_conflict, keep_broken=args.keep_broken)
        ds = result.dataset
        subsets = list(KNOWN_SUBSETS) + sorted({s for it in plan.items for s in it.subsets} - set(KNOWN_SUBSETS))
        counts = registry.count_by_subset(ds, subsets)
        del counts["all"]
        print(f"imported dataset {ds.name} ({ds.id}) into {registry.store.uri}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    kept = f", {result.conflicts_kept} differing kept as they were" if result.conflicts_kept else ""
    print(f"added {result.added} item(s), {result.already_there} already there{kept}")
    if result.duplicates_removed:
        removed = sum(len(d.removed) for d in result.duplicates_removed)
        print(f"removed {removed} duplicate item(s) at {len(result.duplicates_removed)} path(s) (left by concurrent imports of an older version; kept the item each path's entry names):")
        for d in result.duplicates_removed[:SHOW_SKIPPED]:
            print(f"  {shown_path(d.path)}: kept {d.kept}, removed {', '.join(d.removed)}")
        if len(result.duplicates_removed) > SHOW_SKIPPED:
            print(f"  ... and {len(result.duplicates_removed) - SHOW_SKIPPED} more")
    if not shown_before:  # the summary and the skipped list print once
        print(plan.without(path for path, _ in result.broken).summary())
    already_said = set(plan.skipped) if shown_before else set()
    skipped = [entry for entry in result.skipped if entry not in already_said]  # the skipped list prints once too
    if skipped:
        print(f"skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'}{' more' if already_said else ''}:")
        for line in skipped_lines(skipped):
            print(line)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        datasets = registry.list_datasets()
        if args.json:
            print_json([ds.to_dict() for ds in datasets])
        elif not datasets:
            print(f"no datasets in {registry.store.uri} (`model-adapter dataset import` adds one)")
        else:
            print_table(("NAME", "ID", "LABELS"), [(ds.name, ds.id, len(ds.labels)) for ds in datasets])
    return 0


def cmd_items(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        ds = registry.get_dataset(args.dataset)
        flt = item_filters(args)
        listed = 0
        for item in registry.iter_items(ds, flt):  # streamed: one line per item as the listing comes
            listed += 1
            if args.json:
                print(json.dumps({"id": item.id, "path": item.path, "subsets": item.subsets, "mimetype": item.mimetype}), flush=listed % 1000 == 0)
            else:
                print(item.path, flush=listed % 1000 == 0)
        if not listed:
            raise ValidationError("dataset items", "filters", no_match_message(ds, flt, item_census(registry, ds, flt)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        ds = registry.get_dataset(args.dataset)
        info = ds.to_dict()
        info["items"] = registry.count_by_subset(ds, KNOWN_SUBSETS)
        print_json(info)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        ds = registry.get_dataset(args.dataset)
        users = registry.models_of_dataset(ds)
        if users and not args.force:
            raise ConflictError(
                f"dataset {ds.name!r} is the training dataset of model(s) {', '.join(m.name for m in users)}; "
                "delete them first, point them at another dataset (`model update NAME --dataset D`), or pass --force"
            )
        if not confirm(f"delete dataset {ds.name} ({ds.id}) with its items, annotations and predictions?", args):
            print("nothing deleted")
            return 1
        for m in users:
            registry.update_model(m, dataset_id=None)
            print(f"model {m.name} no longer has a training dataset")
        registry.delete_dataset(ds)
        print(f"deleted dataset {ds.name} ({ds.id})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="import, list, show and delete datasets")
    dsub = p.add_subparsers(dest="dataset_cmd", required=True)
    imp = dsub.add_parser(
        "import",
        help="import a folder, COCO JSON, YOLO txt, a CSV list or 'digits'",
        description="Import a dataset. SOURCE is a folder [<subset>/]<label>/<file> (subset folders train/, "
        "val/ or valid/ or validation/, test/), a COCO folder (images/ + a COCO JSON, or --images/--annotations), "
        "a YOLO folder (images/ + labels/*.txt + data.yaml or classes.txt), a CSV of path,label[,subset], or "
        "'digits' (scikit-learn's handwritten digits). Only media files are imported; the rest is skipped and "
        "counted, and so are names no store key can hold (a file name over 250 bytes, a control character such as a newline, a "
        "backslash, bytes that are not UTF-8) and a path that is a folder of an item already in the dataset or below "
        "one's file. Every image is decoded in full before it is written (alongside the uploads; not again on a rerun) "
        "and one that does not decode (truncated, empty, not an image) is skipped and counted unless --keep-broken. A summary of labels and items per subset is printed before anything is written when something "
        "looks off, and always after. Importing the same source again adds only what is new; imports of one source "
        "may run at the same time (each path gets one item), and a rerun removes duplicate items an older version "
        "left at one path (reported).",
    )
    imp.add_argument("source", nargs="?", help="a folder, a .csv file or 'digits' (optional with --format coco --images --annotations)")
    imp.add_argument("--name", help="dataset name (default: digits / the folder or CSV file name)")
    imp.add_argument("--format", choices=FORMATS, default="auto", help="source format (default: auto, detected from the source)")
    imp.add_argument("--images", metavar="DIR", help="COCO: the images folder; CSV: the folder paths are relative to (default: the CSV's)")
    imp.add_argument("--annotations", metavar="FILE", help="COCO: the annotations JSON file")
    imp.add_argument(
        "--split",
        metavar="TRAIN,VAL[,TEST]",
        help="split the items that are in no subset, per label, e.g. 0.8,0.1,0.1 (deterministic with --seed)",
    )
    imp.add_argument("--seed", type=int, default=0, help="seed of --split (and of the digits split); default 0")
    imp.add_argument(
        "--on-conflict",
        choices=("fail", "skip"),
        default="fail",
        help="a file whose content or labels differ from the item already at its path: fail before writing "
        "anything (default) or skip it, keeping the dataset's item",
    )
    imp.add_argument(
        "--keep-broken",
        action="store_true",
        help="import images that do not decode (truncated, empty, not an image) instead of skipping them; no image is decoded",
    )
    imp.add_argument("--dry-run", action="store_true", help="print the summary of what would be imported; write nothing")
    imp.add_argument("--limit", type=int, default=None, help="import only the first N digits")
    add_store_option(imp)
    imp.set_defaults(func=cmd_import)
    ls = dsub.add_parser("list", help="list datasets")
    add_store_option(ls)
    ls.set_defaults(func=cmd_list)
    add_json_option(ls, "the dataset records")
    show = dsub.add_parser("show", help="show a dataset and its item counts")
    show.add_argument("dataset", help="name or id")
    show.add_argument("--json", action="store_true", help="print JSON (what it prints anyway; accepted like every list and show command)")
    add_store_option(show)
    show.set_defaults(func=cmd_show)
    items = dsub.add_parser("items", help="list a dataset's items, one path per line (streamed; --json: one JSON object per line)")
    items.add_argument("dataset", help="name or id")
    items.add_argument("--subset", help="only items of this subset")
    items.add_argument("--path-prefix", help="only items under this path")
    items.add_argument("--json", action="store_true", help="one JSON object per line (id, path, subsets, mimetype), for scripts")
    add_store_option(items)
    items.set_defaults(func=cmd_items)
    delete = dsub.add_parser("delete", help="delete a dataset with its items, annotations and predictions")
    delete.add_argument("dataset", help="name or id")
    delete.add_argument("--yes", action="store_true", help="do not ask (required when the shell is not interactive)")
    delete.add_argument("--force", action="store_true", help="delete it even if models train on it (they are left without a training dataset)")
    add_store_option(delete)
    delete.set_defaults(func=cmd_delete)
