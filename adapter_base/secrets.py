"""Keeping credentials out of logs, errors, warnings, reports and run parameters."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
import warnings
from types import TracebackType
from typing import Any, TextIO

#: Environment variables whose values are secret: the store's credentials and the KFP bearer token.
SECRET_ENV_VARS: tuple[str, ...] = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "MODEL_ADAPTER_KFP_TOKEN")

#: Those of ``SECRET_ENV_VARS`` that grant access on their own (not the access key id, an
#: identifier that may well be a plain word such as a bucket's or a folder's name).
CREDENTIAL_ENV_VARS: tuple[str, ...] = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MODEL_ADAPTER_KFP_TOKEN")

#: What replaces a secret.
MASK = "***"

#: Where a URL starts (``scheme:/``, one slash for the typo ``s3:/``) and where it ends.
_URL_START = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{0,31}:/+")
_URL_END = re.compile(r"[\s'\"<>]")


def _mask_userinfo(text: str) -> str:
    """``text`` with the user part of every URL replaced by ``***`` (in linear time).

    The user part is everything between ``scheme:/[/]`` and the URL's last ``@``: a
    password may hold ``/`` (AWS secret keys do) and even an unencoded ``@``, so no
    narrower rule is safe. ``file:`` URLs have no user part (their ``@`` is a path's).
    """
    out: list[str] = []
    pos = 0
    end = last_at = -1
    for match in _URL_START.finditer(text):
        start = match.end()
        if start < pos or match.group().lower().startswith("file:"):
            continue
        if start >= end:
            found = _URL_END.search(text, start)
            end = found.start() if found else len(text)
            last_at = text.rfind("@", start, end)
        if last_at >= start:
            out += [text[pos:start], MASK]
            pos = last_at
    out.append(text[pos:])
    return "".join(out)


#: Secret values this process was handed other than through the environment (``--token``).
_REGISTERED: set[str] = set()


def register_secret(value: str) -> None:
    """Have ``redact`` mask ``value`` from now on in this process (a token given on the command line)."""
    if value and len(value) >= 4:
        _REGISTERED.add(value)


def redact(text: str) -> str:
    """``text`` with every secret's value (environment, ``register_secret``) and every URL's ``user:password@`` replaced by ``***``."""
    for value in [*(os.environ.get(name) for name in SECRET_ENV_VARS), *_REGISTERED]:
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    return _mask_userinfo(text) if "@" in text else text


def holds_secret(text: str) -> bool:
    """True if ``text`` holds a URL with user information, or the value of a variable of
    ``CREDENTIAL_ENV_VARS`` (a secret key or token): what must never be stored or sent."""
    for name in CREDENTIAL_ENV_VARS:
        value = os.environ.get(name)
        if value and len(value) >= 4 and value in text:
            return True
    return "@" in text and _mask_userinfo(text) != text


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


def _write_stderr(text: str) -> None:
    """Write redacted ``text`` to stderr, if there still is one."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(redact(text))
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - stderr itself is gone: nothing left to tell
        pass


def _redacting_handle_error(record: logging.LogRecord) -> None:
    """``logging.Handler.handleError`` with the dump redacted.

    A handler that fails (say, its pipe closed) makes logging print the current
    exception chain, which may hold an adapter error carrying a credential.
    """
    if not logging.raiseExceptions:
        return
    dump = "".join(traceback.format_exception(*sys.exc_info()))
    _write_stderr(f"--- Logging error ---\n{dump}Message: {record.msg!r}\nArguments: {record.args!r}\n")


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Redact every handler of ``logger`` (default: the root logger), once.

    Each gets a ``RedactingFilter`` and an error dump that is redacted too. Covers the
    framework's own records and those of libraries and user adapters alike.
    """
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
            handler.handleError = _redacting_handle_error  # type: ignore[method-assign]


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None, line: str | None = None
) -> None:
    """``warnings.showwarning``, redacted."""
    text = redact(warnings.formatwarning(message, category, filename, lineno, line))
    if file is None:
        _write_stderr(text)
        return
    try:
        file.write(text)
    except Exception:  # noqa: BLE001 - as warnings does: a warning must never fail the program
        pass


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook``, redacted: an uncaught error in a thread the adapter started."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else threading.get_ident()
    dump = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    _write_stderr(f"Exception in thread {name}:\n{dump}")


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """``sys.excepthook``, redacted: an uncaught error of the main thread (say, under ``--debug``)."""
    _write_stderr("".join(traceback.format_exception(exc_type, exc, tb)))


def _unraisablehook(unraisable: Any) -> None:
    """``sys.unraisablehook``, redacted: an error nothing could raise (in ``__del__``, say)."""
    where = f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}"
    dump = "".join(traceback.format_exception(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))
    _write_stderr(f"{where}\n{dump}")


def install_redaction() -> None:
    """Redact everything this process reports on its own: the root logger's handlers,
    ``warnings`` and uncaught exceptions (main thread, other threads, unraisable).

    Every entry point calls it once logging is set up: the CLI and each pipeline step.
    """
    install_log_redaction()
    warnings.showwarning = _show_warning
    threading.excepthook = _thread_excepthook
    sys.excepthook = _excepthook
    sys.unraisablehook = _unraisablehook
