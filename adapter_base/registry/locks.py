"""Short exclusive holds: a dataset or model name while it is created, its record while it is rewritten.

A holder puts a claim under a key of its own, ``locks/<kind>/<subject>/<writer>.json``,
then lists the claims on that subject, and goes on only when no other live claim is there;
when its block ends it withdraws the claim. Two holders cannot both go on, by the argument
of ``version_claims`` (each writes its claim before it lists), and one that lists after
another's claim is withdrawn sees all that one wrote while holding it. No conditional write
is needed. A hold lasts a few store operations, so a claim older than ``LOCK_EXPIRY_S`` is
taken as left by a holder that is gone, as is one whose writer has ended (``writer_live``).

Contenders go in the order of their claims (``claimed_at``, then writer), so many at once
do not all withdraw and try again: a later one withdraws, the earliest keeps its claim and
lists again until it is alone. Only the fairness rests on that order (and on clocks); going
on always takes a listing, made after the claim was written, with no other live claim.

What is held: a name, so that of creates of one name at once exactly one succeeds; a dataset
or model record, so that a read-modify-write of it (a commit moving a version, an alias, a
status, a metric, an import's labels) never writes back a record another holder changed meanwhile.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import ConflictError
from ..storage import ObjectStore
from . import layout
from .claims import HOST, listed_claims, new_writer, read_claim, withdraw, writer_live

log = logging.getLogger(__name__)

#: Seconds after which a lock's claim counts as abandoned (a hold lasts a few store operations, retries included).
LOCK_EXPIRY_S = 120.0
#: Seconds a holder waits for a subject others hold before ``ConflictError``.
LOCK_WAIT_S = 30.0

LockKind = Literal["dataset-name", "model-name", "dataset", "model"]


@dataclass(frozen=True)
class LockClaim:
    """One holder's claim on ``subject`` (a name, or a dataset or model id) of a ``kind``."""

    kind: str
    subject: str
    writer: str
    host: str
    pid: int
    claimed_at: float

    @property
    def key(self) -> str:
        return layout.lock_claim(self.kind, self.subject, self.writer)

    def live(self) -> bool:
        """Whether its holder may still be holding it."""
        return writer_live(self.writer, self.host, self.pid, self.claimed_at, expiry_s=LOCK_EXPIRY_S)

    def describe(self) -> str:
        """Who holds it, for a message."""
        return f"process {self.pid} on {self.host}"

    @classmethod
    def read(cls, data: Any, kind: str, subject: str, writer: str) -> "LockClaim | None":
        """The claim in ``data`` read from the key of (``kind``, ``subject``, ``writer``); None if it is not one."""
        return read_claim(cls, data, {"kind": kind, "subject": subject, "writer": writer}, ints=("pid",), strs=("host",))


def _order(claim: LockClaim) -> tuple[float, str]:
    """Which of two claims came first (their writers' clocks; a tie is broken by writer token)."""
    return (claim.claimed_at, claim.writer)


class Locks:
    """Holding names and records of ``store`` for a block."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @contextmanager
    def held(self, kind: LockKind, subject: str, what: str) -> Iterator[None]:
        """Hold ``subject`` of ``kind`` for the block; ``ConflictError`` naming ``what`` and its holder when
        it is not free within ``LOCK_WAIT_S``.

        Contenders go in the order of their claims: one that sees an earlier live claim withdraws
        its own and claims again later; the earliest keeps its claim and lists again until no other
        live claim is there (the later ones withdraw, a holder finishes). Not re-entrant: a block
        must not hold the same subject again.
        """
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            claim = LockClaim(kind=kind, subject=subject, writer=new_writer(), host=HOST, pid=os.getpid(), claimed_at=time.time())
            try:
                self.store.put_json(claim.key, asdict(claim))
                while rivals := [c for c in self.claims(kind, subject) if c.writer != claim.writer and c.live()]:
                    if time.monotonic() > deadline:
                        raise ConflictError(f"{what} is held by another process ({rivals[0].describe()}); try again")
                    if any(_order(c) < _order(claim) for c in rivals):
                        break  # an earlier claim goes first
                    time.sleep(random.uniform(0.005, 0.03))
            except BaseException:
                withdraw(self.store, claim.key, claim.writer)
                raise
            if not rivals:
                try:
                    yield
                finally:
                    withdraw(self.store, claim.key, claim.writer)
                return
            withdraw(self.store, claim.key, claim.writer)
            log.debug("%s is held by %s; trying again", what, rivals[0].describe())
            time.sleep(random.uniform(0.01, 0.05))

    def claims(self, kind: str, subject: str) -> list[LockClaim]:
        """The claims on ``subject``; a file that is no claim of its key is logged and ignored."""
        return listed_claims(self.store, layout.lock_claims_prefix(kind, subject), lambda data, writer: LockClaim.read(data, kind, subject, writer))
