"""Entry point of the ``model-adapter`` console script."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import Sequence

from ..secrets import install_redaction, redact
from . import datasets, jobs, models, predictions, runs, step
from .plugins import register_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-adapter",
        description="Run model adapters: datasets, models, training, prediction, evaluation and pipelines.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what each step does (info logs)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    datasets.register(sub)
    models.register(sub)
    jobs.register(sub)
    predictions.register(sub)
    runs.register(sub)
    step.register(sub)
    register_commands(sub)  # pipeline, demo, ...: the model_adapter.cli entry points
    return parser


def interrupted_message(args: argparse.Namespace, argv: list[str], exc: KeyboardInterrupt) -> str:
    """``interrupted``, what the command left (the exception's text), and the exact command that resumes it.

    A command that can resume says how with ``resume_flag`` in its parser defaults: ``""``
    (run it again as it was) or a flag to add (``--resume``).
    """
    text = "interrupted" + (f": {exc}" if str(exc) else "")
    flag = getattr(args, "resume_flag", None)
    if flag is None:
        return text
    again = argv + ([flag] if flag and flag not in argv else [])
    return redact(f"{text}; to resume: model-adapter {shlex.join(again)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the command; errors become one line on stderr (traceback with --debug)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    install_redaction()  # credentials never reach the log, warnings or tracebacks, whoever writes them
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print(interrupted_message(args, sys.argv[1:] if argv is None else list(argv), exc), file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place errors become a message
        if args.debug:
            raise
        print(f"error: {redact(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
