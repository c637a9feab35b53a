"""``model-adapter demo``: the whole flow on the digits example (registered through the ``model_adapter.cli`` entry point)."""

from __future__ import annotations

import argparse

from adapter_base.cli._common import add_store_option, open_registry

from .demo import run_demo


def cmd_demo(args: argparse.Namespace) -> int:
    with open_registry(args, create=True) as registry:
        result = run_demo(registry, fresh=args.fresh, epochs=args.epochs)
    return 0 if result.prediction.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="import digits, train, save, evaluate and predict with the example adapter")
    p.add_argument("--fresh", action="store_true", help="delete an earlier demo dataset and model first")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the adapter's)")
    add_store_option(p)
    p.set_defaults(func=cmd_demo)
