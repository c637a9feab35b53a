"""Claims on version numbers: two writers from the same base never both make a version.

A version is written from a *base*, the version its writer started from (the one a train
run loaded, the one ``save_to_model`` saves over). Before writing any file of version N,
a writer puts a claim under a key of its own, ``models/<id>/claims/<N>/<writer>.json``
(who, from which base, since when), then lists every claim on N. It goes on only if its
claim is the only live one; otherwise it withdraws it and tries again after a short
random pause, or is refused when another writer holds N.

Why this excludes a second writer without conditional writes (which some S3 servers
ignore): each writer writes its claim before it lists. If A and B both went on, A's
listing came before B's claim (A saw only its own) and B's listing before A's claim; but
A's claim came before A's listing: a cycle, so at most one of them goes on. It needs only
read-after-write listings (the local store, SeaweedFS, rclone and AWS S3 give them).
Contention can make both withdraw; the random pauses make a repeat unlikely.

A claim is *live* unless its writer is known to be gone: it was written by this run id
(an earlier attempt of the same run), by a process of this host that has ended, by this
process and is no longer held, or longer than ``CLAIM_EXPIRY_S`` ago. Slots whose claim is
not live are taken over when they have no manifest (a writer that died uploading), and
skipped when they have one (a complete version no record ever named). A holder checks its
claim again right before writing the manifest, so a claim taken over after expiry stops
its old holder there.

A claim's liveness, reading, listing and withdrawal are in ``claims``, shared with ``locks``.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import VersionConflictError
from ..storage import ObjectStore
from . import layout
from .claims import HOST, listed_claims, new_writer, read_claim, withdraw, writer_live

log = logging.getLogger(__name__)

#: Seconds after which a claim counts as abandoned (its writer cannot be checked from here).
CLAIM_EXPIRY_S = 3600.0
#: Tries at a free number before a contended claim is refused.
CLAIM_ATTEMPTS = 6


@dataclass(frozen=True)
class VersionClaim:
    """One writer's claim on ``version`` of ``model_id``, made from ``base_version``."""

    model_id: str
    version: int
    base_version: int
    writer: str
    run_id: str
    host: str
    pid: int
    claimed_at: float

    @property
    def key(self) -> str:
        return layout.version_claim(self.model_id, self.version, self.writer)

    def describe(self) -> str:
        """Who holds it, for a message."""
        who = f"run {self.run_id}" if self.run_id else "a save"
        return f"{who} (process {self.pid} on {self.host}, from version {self.base_version})"

    def live(self, run_id: str = "") -> bool:
        """Whether its writer may still be writing (seen by a writer of run ``run_id``)."""
        if self.run_id and self.run_id == run_id:
            return False  # an earlier attempt of the same run: a run commits once at a time
        return writer_live(self.writer, self.host, self.pid, self.claimed_at, expiry_s=CLAIM_EXPIRY_S)

    @classmethod
    def read(cls, data: Any, model_id: str, version: int, writer: str) -> "VersionClaim | None":
        """The claim in ``data`` read from the key of (``model_id``, ``version``, ``writer``); None if it is not one."""
        return read_claim(
            cls, data, {"model_id": model_id, "version": version, "writer": writer}, ints=("version", "base_version", "pid"), strs=("run_id", "host")
        )


class VersionClaims:
    """Claiming, confirming and releasing version numbers of the models in ``store``."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def claims(self, model_id: str, version: int) -> list[VersionClaim]:
        """The claims on ``version``; a file that is no claim of that key (malformed, copied) is logged and ignored."""
        return listed_claims(
            self.store, layout.version_claims_prefix(model_id, version), lambda data, writer: VersionClaim.read(data, model_id, version, writer)
        )

    def reserve(self, model_id: str, model_name: str, base: int, run_id: str = "") -> VersionClaim:
        """Claim the version that follows ``base``; ``VersionConflictError`` when another writer holds it.

        The number is ``base + 1``, or above it past complete versions that no record names.
        """
        for attempt in range(CLAIM_ATTEMPTS):
            version = self._free_number(model_id, model_name, base, run_id)
            claim = VersionClaim(
                model_id=model_id, version=version, base_version=base, writer=new_writer(),
                run_id=run_id, host=HOST, pid=os.getpid(), claimed_at=time.time(),
            )
            try:
                self.store.put_json(claim.key, asdict(claim))
                rivals = self._rivals(claim)
            except BaseException:
                self.release(claim)
                raise
            if not rivals:
                return claim
            self.release(claim)
            log.info("version %d of %s is contended (%s); trying again", version, model_name, rivals[0].describe())
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
        raise VersionConflictError(f"model {model_name!r}: could not claim the version after {base}: other writers kept claiming it; try again")

    def confirm(self, claim: VersionClaim, model_name: str) -> None:
        """Right before the manifest: ``VersionConflictError`` if ``claim`` is no longer the only live one."""
        rivals = self._rivals(claim)
        mine = any(c.writer == claim.writer for c in self.claims(claim.model_id, claim.version))
        if rivals or not mine:
            holder = rivals[0].describe() if rivals else "nobody (it was removed)"
            raise VersionConflictError(f"model {model_name!r}: the claim on version {claim.version} was taken over by {holder}; nothing written")

    def release(self, claim: VersionClaim) -> None:
        """Withdraw ``claim`` (best effort: a claim left behind is no longer held, so others take it over)."""
        withdraw(self.store, claim.key, claim.writer)

    def _rivals(self, claim: VersionClaim) -> list[VersionClaim]:
        return [c for c in self.claims(claim.model_id, claim.version) if c.writer != claim.writer and c.live(claim.run_id)]

    def _free_number(self, model_id: str, model_name: str, base: int, run_id: str) -> int:
        version = base + 1
        while True:
            live = [c for c in self.claims(model_id, version) if c.live(run_id)]
            if live:
                raise VersionConflictError(
                    f"model {model_name!r}: version {version} is being written by {live[0].describe()}; "
                    f"this write from version {base} is refused (the other writer's version stands)"
                )
            if not self.store.exists(layout.manifest(model_id, version)):
                return version
            log.info("version %d of %s is complete but no record names it (its writer stopped before the record): skipped", version, model_name)
            version += 1
