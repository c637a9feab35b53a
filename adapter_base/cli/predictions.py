"""``model-adapter predictions export|show``: getting stored predictions out."""

from __future__ import annotations

import argparse

from ..errors import ValidationError
from ..export import EXPORT_FORMATS, iter_predictions, read_categories, write_export
from ..flows.preflight import BOX_OUTPUTS, require_items
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
        result = write_export(
            iter_predictions(registry, ds, model, item_filters(args)),
            args.output,
            args.format,
            labels=model.labels or ds.labels,
            categories=categories,
        )
        print(result.summary())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        ds = registry.get_dataset(args.dataset)
        item = registry.find_item(ds, args.item)
        model_ids = [registry.get_model(args.model).id] if args.model else registry.prediction_model_ids(item)
        predictions = []
        for model_id in model_ids:
            pset = registry.get_predictions(item, model_id)
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predictions", help="export a model's predictions (JSON lines, CSV, COCO) or show an item's")
    psub = p.add_subparsers(dest="predictions_cmd", required=True)
    export = psub.add_parser(
        "export",
        help="write a model's stored predictions on a dataset to a file, streaming (any size)",
        description="Write MODEL's stored predictions on the items of --dataset to -o FILE. jsonl: one line per item; "
        "csv: one row per predicted annotation (boxes as left,top,right,bottom); coco: a COCO detection results "
        "list [{image_id, category_id, bbox [x,y,w,h], score}] that pycocotools' COCO.loadRes reads, plus "
        "<name>.images.json (images and categories, a COCO file without annotations). image_id is the COCO image id "
        "of an item imported from COCO, else its position. Items are read and written one at a time.",
    )
    export.add_argument("model", help="model name or id")
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
    show.add_argument("--json", action="store_true", help="print JSON (what it prints anyway; accepted like every list and show command)")
    add_store_option(show)
    show.set_defaults(func=cmd_show)
