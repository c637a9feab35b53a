"""Claims on names: of creates of one dataset or model name at once, exactly one succeeds.

A create puts a claim under a key of its own, ``name-claims/<kind>/<name>/<writer>.json``,
then lists the claims on that name, and goes on only when no other live claim is there.
Holding it, it checks the name is still free, writes the record and the name entry, and
withdraws the claim. Two creates cannot both go on, by the argument of ``version_claims``
(each writes its claim before it lists); and a create that lists after another's claim
is withdrawn lists after that one's name entry, so it finds the name taken. No conditional
write is needed. A claim left by a writer that is gone is not live (``writer_live``).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConflictError
from ..storage import ObjectStore
from . import layout
from .version_claims import CLAIM_ATTEMPTS, HOST, listed_claims, new_writer, read_claim, withdraw, writer_live

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NameClaim:
    """One create's claim on ``name`` of a ``kind`` (``dataset`` or ``model``)."""

    kind: str
    name: str
    writer: str
    host: str
    pid: int
    claimed_at: float

    @property
    def key(self) -> str:
        return layout.name_claim(self.kind, self.name, self.writer)

    def live(self) -> bool:
        """Whether its create may still be under way."""
        return writer_live(self.writer, self.host, self.pid, self.claimed_at)

    def describe(self) -> str:
        """Who holds it, for a message."""
        return f"process {self.pid} on {self.host}"

    @classmethod
    def read(cls, data: Any, kind: str, name: str, writer: str) -> "NameClaim | None":
        """The claim in ``data`` read from the key of (``kind``, ``name``, ``writer``); None if it is not one."""
        return read_claim(cls, data, {"kind": kind, "name": name, "writer": writer}, ints=("pid",), strs=("host",))


class NameClaims:
    """Holding the name of a dataset or model in ``store`` while it is created."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @contextmanager
    def held(self, kind: str, name: str) -> Iterator[None]:
        """Hold ``name`` of ``kind`` for the block; ``ConflictError`` when other creates of it keep holding it."""
        for attempt in range(CLAIM_ATTEMPTS):
            claim = NameClaim(kind=kind, name=name, writer=new_writer(), host=HOST, pid=os.getpid(), claimed_at=time.time())
            try:
                self.store.put_json(claim.key, asdict(claim))
                rivals = [c for c in self.claims(kind, name) if c.writer != claim.writer and c.live()]
            except BaseException:
                self._release(claim)
                raise
            if not rivals:
                try:
                    yield
                finally:
                    self._release(claim)
                return
            self._release(claim)
            log.info("%s name %r is being created by %s; trying again", kind, name, rivals[0].describe())
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
        raise ConflictError(f"a {kind} named {name!r} is being created by another process ({rivals[0].describe()}); try again")

    def claims(self, kind: str, name: str) -> list[NameClaim]:
        """The claims on ``name``; a file that is no claim of its key is logged and ignored."""
        return listed_claims(self.store, layout.name_claims_prefix(kind, name), lambda data, writer: NameClaim.read(data, kind, name, writer))

    def _release(self, claim: NameClaim) -> None:
        withdraw(self.store, claim.key, claim.writer)
