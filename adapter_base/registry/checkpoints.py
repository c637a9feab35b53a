"""Training checkpoints mirrored to the store as whole sets, so a killed run resumes from one epoch end.

An adapter writes its checkpoints to a local directory; at each epoch end the changed
files are uploaded under a fresh push number (``generation``) and then the set's record
(``CheckpointSet``, ``layout.checkpoint_set``) is rewritten in one write. A run killed
while uploading leaves the previous record naming the previous files, untouched: the
next run gets every file of one epoch end, never weights of one epoch with the optimizer
state of another. Files the new record no longer names are deleted after it is written.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..concurrency import map_all
from ..entities import ArtifactFile, CheckpointSet
from ..errors import NotFoundError, ValidationError
from ..local_dirs import safe_join
from ..storage import ObjectStore
from ..storage.digest import sha256_file
from . import layout
from .artifacts import DEFAULT_WINDOW, download_tree, local_files, upload_file
from .identity import check_identity

log = logging.getLogger(__name__)


def stored_checkpoints(store: ObjectStore, model_id: str) -> CheckpointSet | None:
    """The published checkpoint set of a model, or None if it has none.

    A record that does not parse is a ``ValidationError`` naming its key (delete
    ``layout.checkpoints_prefix(model_id)`` to train from scratch).
    """
    key = layout.checkpoint_set(model_id)
    try:
        raw = store.get_json(key)
    except NotFoundError:
        return None
    try:
        found = CheckpointSet.from_dict(raw)
    except ValidationError as exc:
        raise ValidationError("CheckpointSet", key, f"{exc} (delete {layout.checkpoints_prefix(model_id)} to train from scratch)") from None
    return check_identity(found, key, model_id=model_id)


def checkpoint_key(record: CheckpointSet, path: str) -> str:
    """Where the file ``path`` of a published set is stored."""
    return layout.checkpoint_file(record.model_id, record.generations[path], path)


class CheckpointSync:
    """Mirror a local checkpoint directory into the store, one whole set per ``push``."""

    def __init__(self, store: ObjectStore, model_id: str, local_dir: Path, pool: ThreadPoolExecutor) -> None:
        self.store = store
        self.model_id = model_id
        self.local_dir = local_dir
        self.pool = pool
        self._published: CheckpointSet | None = None
        self._seen: dict[str, _Seen] = {}  # the local files the published record names, as last checked

    def restore(self) -> Path | None:
        """Download the published set, digests verified; the directory if there was one, else None.

        Files of a push that never published its record are deleted first.
        """
        published = stored_checkpoints(self.store, self.model_id)
        self._published = published
        legacy = self._drop_unnamed(published)
        if published is None:
            return self._restore_legacy(legacy)
        if not published.files:
            return None
        download_tree(
            self.store, published.files, lambda rel: checkpoint_key(published, rel), self.local_dir, self.pool, DEFAULT_WINDOW
        )
        self._seen = {f.path: _Seen.of(safe_join(self.local_dir, f.path, what="checkpoints")) for f in published.files}
        return self.local_dir

    def push(self) -> int:
        """Publish the local directory as the new set; returns how many files were uploaded.

        Unchanged files keep their stored copy; files deleted locally leave the set.
        """
        before = self._published
        local = local_files(self.local_dir)
        stored = {f.path: f for f in before.files} if before else {}
        changed = [rel for rel in local if rel not in stored or self._changed(rel, stored[rel])]
        if not changed and set(local) == set(stored) and (before is not None or not local):
            return 0
        generation = (before.generation if before else 0) + 1

        def upload(rel: str) -> ArtifactFile:
            seen = _Seen.of(self.local_dir / rel)  # before reading: a later write changes what we see
            row = upload_file(self.store, layout.checkpoint_file(self.model_id, generation, rel), self.local_dir / rel, rel)
            self._seen[rel] = seen
            return row

        uploaded = {f.path: f for f in map_all(upload, changed, self.pool, DEFAULT_WINDOW)}
        files = [uploaded.get(rel) or stored[rel] for rel in local]
        generations = {rel: generation if rel in uploaded else before.generations[rel] for rel in local}  # type: ignore[union-attr]
        record = CheckpointSet(model_id=self.model_id, generation=generation, files=files, generations=generations)
        record.validate()
        self.store.put_json(layout.checkpoint_set(self.model_id), record.to_dict())  # the set changes here, in one write
        self._published = record
        self._seen = {rel: self._seen[rel] for rel in local}
        if before is not None:
            self._delete_unnamed_from(before, record)
        return len(changed)

    def _changed(self, rel: str, stored: ArtifactFile) -> bool:
        """Whether the local file differs from its stored copy: by size and mtime, or by digest when
        its mtime is too close to when it was last seen to tell (file system clocks are coarse)."""
        seen, now = self._seen.get(rel), _Seen.of(self.local_dir / rel)
        if seen is None or (now.size, now.mtime_ns) != (seen.size, seen.mtime_ns):
            return True
        if now.mtime_ns < seen.at_ns - _RACY_NS:
            return False
        if sha256_file(self.local_dir / rel) != stored.sha256:
            return True
        self._seen[rel] = now  # verified unchanged now: no digest next time unless it is written again
        return False

    def clear(self) -> None:
        """Remove the stored checkpoints (after a successful run): the record first, then the files."""
        self.store.delete(layout.checkpoint_set(self.model_id))
        self.store.delete_prefix(layout.checkpoints_prefix(self.model_id))
        self._published = None
        self._seen = {}

    def _delete_unnamed_from(self, old: CheckpointSet, new: CheckpointSet) -> None:
        named = {checkpoint_key(new, f.path) for f in new.files}
        for f in old.files:
            key = checkpoint_key(old, f.path)
            if key not in named:
                self.store.delete(key)

    def _drop_unnamed(self, record: CheckpointSet | None) -> list[str]:
        """Delete the uploads no record names (a killed push's); returns the keys of an older layout, kept."""
        named = {checkpoint_key(record, f.path) for f in record.files} if record else set()
        files_prefix = layout.checkpoint_files_prefix(self.model_id)
        stray, legacy = [], []
        for obj in self.store.list(layout.checkpoints_prefix(self.model_id)):
            pushed = obj.key.startswith(files_prefix) and _GENERATION.match(obj.key[len(files_prefix) :]) is not None
            if pushed and obj.key not in named:
                stray.append(obj.key)
            elif not pushed and obj.key != layout.checkpoint_set(self.model_id):
                legacy.append(obj.key)  # an earlier layout's plain key (even one under files/): never deleted here
        for key in stray:
            self.store.delete(key)
        if stray:
            log.info("removed %d checkpoint file(s) of an interrupted upload", len(stray))
        return legacy

    def _restore_legacy(self, keys: list[str]) -> Path | None:
        """Checkpoints an earlier version stored as plain keys (no record): downloaded as they are."""
        prefix = layout.checkpoints_prefix(self.model_id)
        for key in keys:
            self.store.get_file(key, safe_join(self.local_dir, key[len(prefix) :], what="checkpoints"))
        if keys:
            log.info("restored %d checkpoint file(s) stored without a set record (an earlier version's layout)", len(keys))
        return self.local_dir if keys else None


#: A file whose mtime is this close to (or after) when it was last seen may have been
#: rewritten without its mtime changing: timestamps advance in clock ticks, not nanoseconds.
_RACY_NS = 2_000_000_000
#: The start of a key below ``checkpoint_files_prefix`` that a push wrote: its generation folder.
_GENERATION = re.compile(r"\d{6,}/")


@dataclass(frozen=True)
class _Seen:
    size: int
    mtime_ns: int
    at_ns: int  # when the file was seen so

    @classmethod
    def of(cls, path: Path) -> _Seen:
        at = time.time_ns()
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, at)
