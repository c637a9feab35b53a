"""Calling the user's adapter hooks, so that whatever a hook raises is a failure the framework records.

A hook that raises ``SystemExit`` (``sys.exit`` in adapter code), ``KeyboardInterrupt`` or
another ``BaseException`` that is not an ``Exception`` would slip past every
``except Exception`` on its way out: no failure recorded, no report stored, a bare exit code
or a raw traceback. ``call_hook`` turns it into an ``AdapterHookError`` naming the hook.

The user's own Ctrl-C stays a ``KeyboardInterrupt``: while a hook runs on the main thread
(the only one a signal interrupts), a SIGINT handler notes that the signal was delivered
before Python's handler raises it. A ``KeyboardInterrupt`` with no SIGINT behind it was
raised by the adapter.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable, Iterator, TypeVar

from .errors import AdapterHookError

T = TypeVar("T")


def call_hook(adapter: Any, hook: str, *args: Any, **kwargs: Any) -> Any:
    """``adapter.<hook>(*args, **kwargs)``; a ``BaseException`` that is not an ``Exception`` becomes ``AdapterHookError``."""
    return guarded(f"{type(adapter).__name__}.{hook}", getattr(adapter, hook), *args, **kwargs)


def guarded(hook: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, adapter code called ``hook`` in errors; see ``call_hook``."""
    with _noting_sigint() as noted:
        try:
            return fn(*args, **kwargs)
        except Exception:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and noted.is_set():
                raise  # the user's Ctrl-C
            raise AdapterHookError(hook, raised(exc)) from exc


def raised(exc: BaseException) -> str:
    """``SystemExit: 3``: the exception's type and, when it has one, its text."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _noting_sigint() -> Iterator[threading.Event]:
    """An event set when a SIGINT is delivered during the block, which the handler in place then acts on.

    Only the main thread gets signals: elsewhere, and when SIGINT is ignored or left to the
    system (no ``KeyboardInterrupt`` comes of it), the event is never set. A nested call
    shares the outermost call's event.
    """
    if threading.current_thread() is not threading.main_thread():
        yield threading.Event()
        return
    previous = signal.getsignal(signal.SIGINT)
    noted = getattr(previous, "noted", None)
    if noted is not None or not callable(previous):
        yield noted if noted is not None else threading.Event()
        return
    noted = threading.Event()

    def note(signum: int, frame: Any) -> None:
        noted.set()
        previous(signum, frame)

    note.noted = noted  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, note)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)
