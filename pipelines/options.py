"""Options both backends' commands share: the pipelines' run-time parameters, the image and the profile."""

from __future__ import annotations

import argparse
import json
from typing import Any

from adapter_base.cli._common import add_config_option
from adapter_base.errors import ValidationError

from .compute import PROFILES
from .steps import KIND_HELP, PIPELINE_KINDS

IMAGE_HELP = "project image the steps run on, or one built FROM it with your adapter (default: $MODEL_ADAPTER_IMAGE, else model-adapter:dev)"
PROFILE_HELP = f"compute profile of the heavy steps: {', '.join(PROFILES)}"


def kind_parsers(parent: argparse.ArgumentParser, action: str) -> dict[str, argparse.ArgumentParser]:
    """One subcommand of ``parent`` per pipeline (``train``, ``predict``), described as ``<action> the <kind> pipeline``."""
    ksub = parent.add_subparsers(dest="kind", required=True, metavar="PIPELINE")
    return {kind: ksub.add_parser(kind, help=KIND_HELP[kind], description=f"{action} the {kind} pipeline: {KIND_HELP[kind]}.") for kind in PIPELINE_KINDS}


def param_options(p: argparse.ArgumentParser, kind: str) -> None:
    """The pipeline's run-time parameters."""
    p.add_argument("--adapter", required=True, help="adapter import path, package.module:Class (must be importable in the image)")
    p.add_argument("--model", required=True, help="model name or id")
    p.add_argument(
        "--dataset",
        required=kind == "predict",
        default="",
        help="dataset name or id" + (" (default: the model's dataset)" if kind == "train" else ""),
    )
    p.add_argument(
        "--store",
        default="",
        help="store URI, s3://bucket/prefix or a path (not secret; default: $MODEL_ADAPTER_STORE where the step runs)",
    )
    add_config_option(p, "adapter configuration override")
    p.add_argument("--batch-size", type=int, default=0, help="prediction batch size (default: the adapter's)")
    if kind == "train":
        p.add_argument("--test-subset", default="test", help="evaluate on items of this subset (default: test)")
        p.add_argument("--test-filters", default=None, metavar="JSON", help='evaluation filters as JSON, e.g. \'{"subset": "test"}\' (overrides --test-subset)')
        p.add_argument("--metric", default="accuracy", help="metric of the promotion gate: accuracy, macro_f1, macro.f1, map, ... (default: accuracy)")
        p.add_argument("--threshold", type=float, default=0.9, help="promote when the metric is >= this (default: 0.9)")
        p.add_argument("--alias", default="production", help="alias to promote (default: production)")
    else:
        p.add_argument("--shards", type=int, default=4, help="number of shards (default: 4)")
        p.add_argument("--subset", default=None, help="only items of this subset")
        p.add_argument("--path-prefix", default=None, help="only items under this path")
        p.add_argument("--filters", default=None, metavar="JSON", help='item filters as JSON, e.g. \'{"metadata": {"camera": "a"}}\'')
        p.add_argument("--resume", action="store_true", help="skip items this model version already predicted")
        p.add_argument("--alias", default="", help="predict with the version this alias points at, e.g. production (default: the current version)")


def _json_dict(text: str | None, what: str) -> dict[str, Any] | None:
    if text is None or text == "":
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("pipeline", what, f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError("pipeline", what, f"expected a JSON object, got {type(value).__name__}")
    return value


def pipeline_arguments(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline parameters from parsed options."""
    from adapter_base.cli._common import item_filters, parse_key_values
    from adapter_base.storage import check_store_uri

    out: dict[str, Any] = {
        "adapter": args.adapter,
        "model": args.model,
        "dataset": args.dataset or "",
        "store_uri": check_store_uri(args.store or ""),
        "configuration": parse_key_values(args.config, "--config"),
        "batch_size": int(args.batch_size or 0),
    }
    if kind == "train":
        test_filters = _json_dict(args.test_filters, "--test-filters")
        out.update(
            test_filters=test_filters if test_filters is not None else {"subset": args.test_subset},
            metric=args.metric,
            threshold=float(args.threshold),
            alias=args.alias,
        )
    else:
        if args.shards < 1:
            raise ValidationError("pipeline", "--shards", f"must be >= 1, got {args.shards}")
        filters = {**(_json_dict(args.filters, "--filters") or {}), **item_filters(args)}
        out.update(filters=filters, num_shards=int(args.shards), resume=bool(args.resume), alias=args.alias or "")
    return out
