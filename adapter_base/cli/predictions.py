"""``model-adapter predictions export|show|delete``: getting stored predictions out, and removing a version's."""

from __future__ import annotations

import argparse

from ..entities import Dataset, Model
from ..errors import ValidationError
from ..export import EXPORT_FORMATS, iter_predictions, read_categories, write_export
from ..flows.preflight import BOX_OUTPUTS, require_items
from ..registry import Registry
from ._common import add_store_option, item_filters, open_registry, print_json


def cmd_export(args: argparse.Namespace) -> int:
    categories = read_categories(args.categories) if args.categories else None
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        ds = registry.get_dataset(args.dataset)
        if args.format == "coco" and model.output_type not in BOX_OUTPUTS:
            raise ValidationError(
                "predictions export", "--format",
                f"COCO detection results hold boxes and model {model.name!r} outputs {model.output_type}: use --format jsonl or csv",
            )  # fmt: skip
        require_items(registry, ds, item_filters(args), "predictions export")
        version = args.version if args.version is not None else _latest_predicted(registry, ds, model)
        result = write_export(
            iter_predictions(registry, ds, model, item_filters(args), version=version),
            args.output,
            args.format,
            labels=model.labels or ds.labels,
            categories=categories,
            version=version,
        )
        print(result.summary())
    return 0


def _latest_predicted(registry: Registry, ds: Dataset, model: Model) -> int:
    """The latest version of ``model`` with predictions on ``ds`` (its current version when none has)."""
    versions = registry.predicted_versions(ds, model.id)
    return versions[-1] if versions else model.version


def cmd_show(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        ds = registry.get_dataset(args.dataset)
        item = registry.find_item(ds, args.item)
        if args.version is not None and not args.model:
            raise ValidationError("predictions show", "--version", "a version is a model's: name the model with --model")
        model_ids = [registry.get_model(args.model).id] if args.model else registry.prediction_model_ids(item)
        predictions = []
        for model_id in model_ids:
            pset = registry.get_predictions(item, model_id, args.version)
            if pset is not None:
                predictions.append(pset.to_dict())
        print_json(
            {
                "item": item.to_dict(),
                "ground_truth": registry.get_ground_truth(item).to_dict()["annotations"],
                "predictions": predictions,
            }
        )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        ds = registry.get_dataset(args.dataset)
        removed = registry.delete_version_predictions(ds, model.id, args.version)
        left = [v for v in registry.predicted_versions(ds, model.id) if v != args.version]
        print(
            f"deleted {removed} prediction set(s) of {model.name} v{args.version} on dataset {ds.name}; "
            + (f"version(s) {', '.join(map(str, left))} keep theirs" if left else "no other version has predictions on it")
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predictions", help="export a model version's predictions (JSON lines, CSV, COCO), show an item's, or delete a version's"
    )
    psub = p.add_subparsers(dest="predictions_cmd", required=True)
    export = psub.add_parser(
        "export",
        help="write a model's stored predictions on a dataset to a file, streaming (any size)",
        description="Write MODEL's stored predictions on the items of --dataset to -o FILE. jsonl: one line per item; "
        "csv: one row per predicted annotation (boxes as left,top,right,bottom); coco: a COCO detection results "
        "list [{image_id, category_id, bbox [x,y,w,h], score}] that pycocotools' COCO.loadRes reads, plus "
        "<name>.images.json (images and categories, a COCO file without annotations). image_id is the COCO image id "
        "of an item imported from COCO, else its position. Items are read and written one at a time. Predictions are kept "
        "per model version: one version's are exported (--version); jsonl and csv rows name it, coco in its images file.",
    )
    export.add_argument("model", help="model name or id")
    export.add_argument(
        "--version", type=int, help="export the predictions of this model version (default: the latest version with predictions on the dataset)"
    )
    export.add_argument("--dataset", required=True, help="dataset name or id")
    export.add_argument("--subset", help="only items of this subset")
    export.add_argument("--path-prefix", help="only items under this path")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="jsonl, csv or coco")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write (replaced when the export finishes)")
    export.add_argument(
        "--categories",
        metavar="COCO_JSON",
        help="coco: take category ids from this COCO file's categories, e.g. the one the dataset was imported from "
        "(default: 1, 2, ... in the order of the model's labels)",
    )
    add_store_option(export)
    export.set_defaults(func=cmd_export)

    show = psub.add_parser("show", help="show an item's ground truth and predictions as JSON")
    show.add_argument("item", help="item id, or its path in the dataset (e.g. test/cat/1.png)")
    show.add_argument("--dataset", required=True, help="dataset name or id")
    show.add_argument("--model", help="only this model's predictions (name or id; default: every model's)")
    show.add_argument("--version", type=int, help="with --model: that model version's predictions (default: each model's latest version on the item)")
    show.add_argument("--json", action="store_true", help="print JSON (what it prints anyway; accepted like every list and show command)")
    add_store_option(show)
    show.set_defaults(func=cmd_show)

    delete = psub.add_parser(
        "delete",
        help="delete one model version's predictions on a dataset",
        description="Delete the prediction sets of MODEL's --version on the items of --dataset; other versions' stay. "
        "(`model delete` removes every version's, with the model.)",
    )
    delete.add_argument("model", help="model name or id")
    delete.add_argument("--dataset", required=True, help="dataset name or id")
    delete.add_argument("--version", type=int, required=True, help="the model version whose predictions go")
    add_store_option(delete)
    delete.set_defaults(func=cmd_delete)
