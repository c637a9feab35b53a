"""Keeping credentials out of logs, errors and reports."""

from __future__ import annotations

import logging
import os
import sys
import traceback

#: Environment variables whose values are secret.
SECRET_ENV_VARS: tuple[str, ...] = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN")


def redact(text: str) -> str:
    """``text`` with the value of every secret environment variable replaced by ``***``."""
    for name in SECRET_ENV_VARS:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts secret values from each record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def _redacting_handle_error(record: logging.LogRecord) -> None:
    """``logging.Handler.handleError`` with the dump redacted.

    A handler that fails (say, its pipe closed) makes logging print the current
    exception chain, which may hold an adapter error carrying a credential.
    """
    if not logging.raiseExceptions or sys.stderr is None:
        return
    dump = "".join(traceback.format_exception(*sys.exc_info()))
    try:
        sys.stderr.write(redact(f"--- Logging error ---\n{dump}Message: {record.msg!r}\nArguments: {record.args!r}\n"))
    except Exception:  # noqa: BLE001 - stderr itself is gone: nothing left to tell
        pass


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Redact every handler of ``logger`` (default: the root logger), once.

    Each gets a ``RedactingFilter`` and an error dump that is redacted too. Covers the
    framework's own records and those of libraries and user adapters alike.
    """
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
            handler.handleError = _redacting_handle_error  # type: ignore[method-assign]
