"""``model-adapter demo``: the whole flow on the digits example."""

from __future__ import annotations

import argparse

from ._common import add_store_option, open_registry


def cmd_demo(args: argparse.Namespace) -> int:
    from examples.digits.demo import run_demo

    with open_registry(args) as registry:
        result = run_demo(registry, fresh=args.fresh, epochs=args.epochs)
    return 0 if result.prediction.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="import digits, train, save, evaluate and predict with the example adapter")
    p.add_argument("--fresh", action="store_true", help="delete an earlier demo dataset and model first")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the adapter's)")
    add_store_option(p)
    p.set_defaults(func=cmd_demo)
