"""Shared helpers of the CLI tests: running ``model-adapter`` in-process and a small trained digits model."""

from __future__ import annotations

import logging

import pytest

from adapter_base import Registry
from adapter_base.cli.main import main
from examples.digits.adapter import DigitsAdapter

ADAPTER = "examples.digits.adapter:DigitsAdapter"
#: Not an image: PIL cannot decode it, so the item fails at the ``prepare`` stage.
CORRUPT_BYTES = b"\x89PNG\r\n\x1a\n" + b"not a png" * 4


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``model-adapter ARGV`` in this process: exit code, stdout, stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must succeed; its stdout."""
    code, out, err = run(capsys, *argv)
    assert code == 0, f"{argv}: exit {code}\n{out}\n{err}"
    return out


def error_line(err: str) -> str:
    """The one ``error: ...`` line a failed command prints."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def trained_digits(capsys: pytest.CaptureFixture[str], store: str, *, limit: int = 60, versions: int = 1, corrupt: bool = False) -> None:
    """Import ``limit`` digits as ``digits``, create model ``mlp`` and train it ``versions`` times, all from the CLI."""
    s = ("--store", store)
    ok(capsys, "dataset", "import", "digits", "--limit", str(limit), *s)
    ok(capsys, "model", "create", "--name", "mlp", "--adapter", ADAPTER, "--dataset", "digits", "--config", "epochs=2", "seed=1", *s)
    for _ in range(versions):
        ok(capsys, "train", "mlp", *s)
    if corrupt:
        with Registry.open(store) as registry:
            registry.add_item(registry.get_dataset("digits"), "test/corrupt.png", CORRUPT_BYTES, mimetype="image/png", subsets=["test"])


class BuggyDigitsAdapter(DigitsAdapter):
    """A bug in the adapter: every ``predict`` call raises the same error."""

    def predict(self, batch, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'forward'")


BUGGY_ADAPTER = "cli_support:BuggyDigitsAdapter"


class ChattyDigitsAdapter(DigitsAdapter):
    """Logs a warning from every ``predict`` call, as adapters do."""

    def predict(self, batch, **kwargs):
        logging.getLogger("chatty").warning("adapter says: a batch of %d", len(batch))
        return super().predict(batch, **kwargs)


CHATTY_ADAPTER = "cli_support:ChattyDigitsAdapter"
