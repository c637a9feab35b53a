"""``model-adapter embeddings export``: getting stored embeddings out."""

from __future__ import annotations

import argparse

from ..export_embeddings import EMBEDDING_FORMATS, iter_embeddings, write_embeddings
from ._common import add_store_option, item_filters, open_registry


def cmd_export(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        ds = registry.get_dataset(args.dataset)
        result = write_embeddings(iter_embeddings(registry, ds, model, item_filters(args)), args.output, args.format)
        print(result.summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embeddings", help="export a model's stored embeddings (JSON lines or a NumPy matrix)")
    esub = p.add_subparsers(dest="embeddings_cmd", required=True)
    export = esub.add_parser(
        "export",
        help="write a model's stored embeddings on a dataset to a file, streaming",
        description="Write MODEL's stored embeddings (model-adapter embed) of the items of --dataset to -o FILE. "
        "jsonl: one line per embedded item (item_id, path, subsets, model_version, run_id, vector); "
        "npy: an N x D float32 matrix, and FILE's name with .items.jsonl: the item_id and path of each row.",
    )
    export.add_argument("model", help="model name or id")
    export.add_argument("--dataset", required=True, help="dataset name or id")
    export.add_argument("--subset", help="only items of this subset")
    export.add_argument("--path-prefix", help="only items under this path")
    export.add_argument("--format", choices=EMBEDDING_FORMATS, default="jsonl", help="jsonl (default) or npy")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write (replaced whole when the export finishes)")
    add_store_option(export)
    export.set_defaults(func=cmd_export)
