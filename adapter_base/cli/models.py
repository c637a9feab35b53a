"""``model-adapter model create|list|show``."""

from __future__ import annotations

import argparse
import json

from ..loading import load_adapter_class
from ._common import add_store_option, open_registry, parse_key_values, print_json


def cmd_create(args: argparse.Namespace) -> int:
    load_adapter_class(args.adapter)  # fail now, not at training time
    with open_registry(args) as registry:
        ds = registry.get_dataset(args.dataset) if args.dataset else None
        subsets = {name: {"subset": name} for name in args.subsets}
        model = registry.create_model(
            args.name,
            adapter=args.adapter,
            configuration=parse_key_values(args.config, "--config"),
            labels=args.labels.split(",") if args.labels else (ds.labels if ds else []),
            dataset_id=ds.id if ds else None,
            subsets=subsets,
            input_type=args.input_type,
            output_type=args.output_type,
        )
        print(f"created model {model.name} ({model.id})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        for m in registry.list_models():
            print(f"{m.name}\t{m.id}\tv{m.version}\t{m.status}\t{json.dumps(m.metrics.get('evaluation', {}), default=str)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        print_json(registry.get_model(args.model).to_dict())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="create, list and show models")
    msub = p.add_subparsers(dest="model_cmd", required=True)
    create = msub.add_parser("create", help="create a model (unique name) bound to an adapter class")
    create.add_argument("--name", required=True)
    create.add_argument("--adapter", required=True, help="import path package.module:Class")
    create.add_argument("--dataset", help="dataset to train on (name or id)")
    create.add_argument("--subsets", nargs="+", default=["train", "validation"], help="subset names used for training (default: train validation)")
    create.add_argument("--labels", help="comma-separated labels (default: the dataset's)")
    create.add_argument("--config", nargs="*", metavar="KEY=VALUE", help="configuration values (JSON values allowed)")
    create.add_argument("--input-type", default="image")
    create.add_argument("--output-type", default="classification", help="classification or box")
    add_store_option(create)
    create.set_defaults(func=cmd_create)
    ls = msub.add_parser("list", help="list models")
    add_store_option(ls)
    ls.set_defaults(func=cmd_list)
    show = msub.add_parser("show", help="show a model record as JSON")
    show.add_argument("model", help="name or id")
    add_store_option(show)
    show.set_defaults(func=cmd_show)
