"""Noticing that a run's model was deleted under it, and taking back what the run stored after.

``Registry.delete_model`` removes the record first, then every prediction set of the model.
A run checks the record between batches (one request, ``interval_s`` apart at most); once it
is gone the run stops. Sets the run stored after the last check that found the record may
have been written after the delete listed them: those are deleted again, so nothing of the
model is left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Sequence

from ..entities import Item, Model
from ..errors import NotFoundError, StoreError
from ..registry import layout
from ..storage import ObjectStore
from .report import error_text

log = logging.getLogger(__name__)

#: Seconds between two checks that the model still exists (one request each), before a batch.
CHECK_INTERVAL_S = 0.5


class DeletionWatch:
    """Whether ``model`` still exists, checked every ``interval_s`` at most; what to take back if not."""

    def __init__(self, store: ObjectStore, model: Model, run_id: str, dataset_id: str | None, interval_s: float = CHECK_INTERVAL_S) -> None:
        self.store = store
        self.model = model
        self.run_id = run_id
        self.dataset_id = dataset_id
        self.interval_s = interval_s
        #: True once the record was found gone: the run stops and stores nothing more.
        self.deleted = False
        self._checked_at = time.monotonic()  # the model was read when it was loaded
        self._unchecked: list[Item] = []  # items whose sets were stored since the last check found the model
        self._lock = threading.Lock()

    def stored(self, items: Sequence[Item], errors: Sequence[BaseException | None]) -> None:
        """Note the items whose sets were just stored (``errors[i]`` None); called from the writer's threads."""
        done = [it for it, err in zip(items, errors) if err is None]
        if done:
            with self._lock:
                self._unchecked.extend(done)

    def check(self, *, now: bool = False) -> None:
        """``NotFoundError`` naming the model when its record is gone; skipped within ``interval_s`` of the last check unless ``now``."""
        if not now and time.monotonic() - self._checked_at < self.interval_s:
            return
        self._checked_at = time.monotonic()
        with self._lock:
            before = len(self._unchecked)
        try:
            present = self.store.exists(layout.model_record(self.model.id))
        except StoreError as exc:  # cannot tell: the writes meet the same store
            log.warning("cannot check that model %s still exists: %s", self.model.name, error_text(exc))
            return
        if present:  # stored while the model existed: a later delete lists and removes them
            with self._lock:
                del self._unchecked[:before]
            return
        self.deleted = True
        raise NotFoundError(
            f"model {self.model.name!r} ({self.model.id}) was deleted while run {self.run_id} predicted with it: "
            "stopped; the predictions it wrote since are removed and no report is stored"
        )

    def take_back(self) -> None:
        """After the last write: delete the sets stored since the model was last found (a deleted model's only)."""
        if not self.deleted:
            return
        with self._lock:
            items, self._unchecked = self._unchecked, []
        for item in items:
            try:
                self.store.delete(layout.predictions(self.dataset_id or item.dataset_id, item.id, self.model.id, self.model.version))
            except Exception as exc:  # noqa: BLE001 - the run's own error is the one to raise
                log.error("item %s: cannot remove the prediction set of deleted model %s: %s", item.id, self.model.name, error_text(exc))
