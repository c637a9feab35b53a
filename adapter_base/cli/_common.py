"""What every subcommand shares: the store option, opening the registry, parsing KEY=VALUE options."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterable, Mapping, Sequence

from ..entities import Model
from ..errors import NotFoundError, ValidationError
from ..registry import Registry
from ..secrets import holds_secret
from ..storage import default_store_uri, open_store


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=None,
        help="store URI: a path, file:///path or s3://bucket/prefix (default: $MODEL_ADAPTER_STORE, "
        "else the embedded local store under $MODEL_ADAPTER_HOME, default ~/.model-adapter)",
    )


def open_registry(args: argparse.Namespace, *, create: bool = False) -> Registry:
    """The registry over ``--store`` (or the default store), checked at once (S3: bucket and credentials).

    Only commands that write the first records (``dataset import``, ``model create``, ``demo``)
    pass ``create=True``; every other one refuses a store that does not exist.
    """
    return Registry(open_store(args.store or default_store_uri(), create=create, check=True))


def item_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The item filters of ``--subset`` and ``--path-prefix`` (those given)."""
    flt: dict[str, Any] = {}
    if getattr(args, "subset", None):
        flt["subset"] = args.subset
    if getattr(args, "path_prefix", None):
        flt["path_prefix"] = args.path_prefix
    return flt


def add_config_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--config KEY=VALUE ...``: repeatable, each with one or more pairs (``--config a=1 --config b=2``
    and ``--config a=1 b=2`` mean the same)."""
    parser.add_argument("--config", action="extend", nargs="+", metavar="KEY=VALUE", help=help + " (repeatable; JSON values allowed)")


def parse_key_values(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` to ``{"a": 1, "b": "x"}`` (values parsed as JSON when they are JSON).

    A value holding a credential (a secret variable's value, or a URL with ``user:password@``)
    is refused without being echoed: configuration is stored with the model and sent as a run
    parameter, where anyone who can read the store or see the run would read it.
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(what, "KEY=VALUE" if holds_secret(pair) else pair, "expected KEY=VALUE")
        if holds_secret(value):
            raise ValidationError(
                what,
                key,
                "the value holds a credential; configuration is stored and shown in plain text, so pass "
                "credentials through the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, from a "
                "Kubernetes Secret in a cluster) instead",
            )
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, allow_nan=False, default=str))


def add_json_option(parser: argparse.ArgumentParser, what: str = "the records") -> None:
    """``--json``: print ``what`` as JSON, for scripts (the table is for people)."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON, for scripts")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``rows`` in columns aligned under ``headers``, two spaces apart (the first column starts each line)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def number_text(value: Any) -> str:
    """A metric as people read it: floats to 4 significant digits, anything else as it is."""
    return f"{value:#.4g}".rstrip(".") if isinstance(value, float) else str(value)  # 1.0 -> 1.000, 0.98765 -> 0.9877


def metrics_text(metrics: Mapping[str, Any] | None) -> str:
    """``accuracy 0.9667, macro_f1 0.9661, count 30``: the numbers of ``metrics`` (others left out), ``-`` when none."""
    pairs = [f"{k} {number_text(v)}" for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(pairs) or "-"


def confirm(question: str, args: argparse.Namespace) -> bool:
    """True when ``--yes`` was given or the user answers yes; a non-interactive shell without ``--yes`` is refused."""
    if getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        raise ValidationError("delete", "--yes", f"{question} needs confirmation and this shell is not interactive: pass --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def chosen_version(model: Model, args: argparse.Namespace) -> int | None:
    """The version ``--version N`` or ``--alias NAME`` picks (None: the current one)."""
    if getattr(args, "alias", None):
        if args.alias not in model.aliases:
            raise NotFoundError(f"model {model.name!r} has no alias {args.alias!r} (has: {', '.join(sorted(model.aliases)) or 'none'}; `model-adapter model alias set` adds one)")
        return model.aliases[args.alias]
    version = getattr(args, "version", None)
    if version is not None and not 1 <= version <= model.version:
        raise NotFoundError(f"model {model.name!r} has no version {version} (it has versions 1 to {model.version}; see `model-adapter model versions {model.name}`)")
    return version
