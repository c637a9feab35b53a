"""Entry point of the ``model-adapter`` console script."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import Sequence

from ..secrets import install_redaction, redact
from ..shutdown import exit_when_done
from . import datasets, embeddings, jobs, models, predictions, runs, step
from .plugins import register_commands


#: The exit codes of every command (the --help epilog).
EXIT_CODES = """exit codes:
  0    done
  1    failed, with one line "error: ..." on stderr (a traceback with --debug); predict and
       evaluate: some items failed (listed, the run report is stored). An error, sys.exit or
       any other exception raised by the adapter's code (load, save, train, predict,
       prepare_item_func, ...) fails like this, naming the hook
  2    bad command line (usage)
  130  stopped by Ctrl-C (SIGINT); the message says how to resume where a command can
A command exits once its work is done and its report stored, even if the adapter left
threads running (they are named in a warning)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-adapter",
        description="Run model adapters: datasets, models, training, prediction, evaluation and pipelines.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what each step does (info logs)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    datasets.register(sub)
    models.register(sub)
    jobs.register(sub)
    predictions.register(sub)
    embeddings.register(sub)
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
    """Parse arguments, run the command; errors become one line on stderr (traceback with --debug).

    Run as the console script (``argv`` None), the process then exits with the command's code
    even if the adapter left threads running (``shutdown.exit_when_done``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    install_redaction()  # credentials never reach the log, warnings or tracebacks, whoever writes them
    code = 1  # unless the command returns: an exception left to the traceback (--debug) exits 1
    try:
        code = run_command(args, sys.argv[1:] if argv is None else list(argv))
        return code
    except SystemExit as exc:  # a command that exits on purpose keeps its code
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        raise
    finally:
        if argv is None:
            exit_when_done(code)


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the parsed command; its exit code (see ``EXIT_CODES``), an error as one line on stderr."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # adapter code's own KeyboardInterrupt is an AdapterHookError by now
        print(interrupted_message(args, argv, exc), file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the one place errors become a message
        if args.debug:
            raise
        print(f"error: {redact(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
