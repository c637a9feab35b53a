"""Claims a writer puts in the store before it writes: who (host, process, a writer token of its own),
since when, and whether that writer may still be writing.

A claim is *live* unless its writer is known to be gone: by a process of this host that has
ended, by this process and no longer held, or older (or dated further ahead) than the
expiry its user gives. ``version_claims`` claims version numbers with them, ``locks`` names
and records; both write a claim, then list the claims beside it.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import NotFoundError, StoreError
from ..secrets import redact
from ..storage import ObjectStore

log = logging.getLogger(__name__)

C = TypeVar("C")

HOST = socket.gethostname()
_held: set[str] = set()  # writer tokens of the claims this process holds
_held_lock = threading.Lock()


def new_writer() -> str:
    """A writer token of this process, held (its claims live) until ``drop``."""
    writer = f"{os.getpid()}-{uuid.uuid4().hex[:16]}"
    with _held_lock:
        _held.add(writer)
    return writer


def drop(writer: str) -> None:
    """This process no longer holds ``writer``'s claims: others may take them over."""
    with _held_lock:
        _held.discard(writer)


def writer_live(writer: str, host: str, pid: int, claimed_at: float, *, expiry_s: float) -> bool:
    """Whether the writer of a claim may still be writing: not older than ``expiry_s`` nor dated further
    ahead (a forged date or a clock that far off would hold it for ever), and, on this host, its process
    alive (in this process: the claim still held)."""
    if abs(time.time() - claimed_at) > expiry_s:
        return False
    if host != HOST:
        return True
    if pid == os.getpid():
        with _held_lock:
            return writer in _held
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # not ours to signal: it exists
        return True
    return True


def read_claim(cls: type[C], data: Any, key: dict[str, Any], *, ints: tuple[str, ...], strs: tuple[str, ...]) -> C | None:
    """The claim (a dataclass ``cls``) in record ``data``, or None if it is not one: every field there,
    ``ints`` and ``strs`` of their types, ``claimed_at`` a finite number, and the fields its key names
    (``key``: field -> value) equal to the key's."""
    if not isinstance(data, dict):
        return None
    try:
        claim = cls(**{name: data[name] for name in cls.__dataclass_fields__})  # type: ignore[attr-defined]
    except KeyError:
        return None
    if any(isinstance(data[f], bool) or not isinstance(data[f], int) for f in ints) or not all(isinstance(data[f], str) for f in strs):
        return None
    at = data["claimed_at"]
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        return None
    if any(data[f] != value for f, value in key.items()):
        return None
    return claim


def listed_claims(store: ObjectStore, prefix: str, read: Callable[[Any, str], C | None]) -> list[C]:
    """The claims under ``prefix``, each ``read(record, writer)`` from its key; a file that is no claim of
    its key (malformed, copied) is logged and ignored."""
    found = []
    for info in store.list(prefix):
        writer = info.key[len(prefix):].removesuffix(".json")
        try:
            claim = read(store.get_json(info.key), writer)
        except NotFoundError:
            continue  # withdrawn meanwhile
        except StoreError as exc:
            claim = None
            log.warning("claim %s is unreadable: %s", info.key, redact(str(exc)))
        if claim is None:
            log.warning("ignoring %s: it is not a claim of that key", info.key)
            continue
        found.append(claim)
    return found


def withdraw(store: ObjectStore, key: str, writer: str) -> None:
    """Drop ``writer`` and delete its claim at ``key`` (best effort: a claim left behind is no longer held,
    so others take it over)."""
    drop(writer)
    try:
        store.delete(key)
    except Exception as exc:  # noqa: BLE001 - the caller's own outcome matters more
        log.warning("could not remove claim %s: %s", key, redact(str(exc)))
