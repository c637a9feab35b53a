"""Listing a dataset's item records a page at a time instead of one request per record.

Each item record stays one object (``records/<item_id>.json``): ``add_item`` and
``update_item`` write only that, atomically, as before. A page
(``record-pages/<record name>``, one ``name TAB etag TAB record JSON`` line a record) holds copies of a run of consecutive records,
each with the etag of the version copied; the page named after record ``r`` covers the
records from ``r`` up to the next page's name. A listing walks the record listing (which
gives every record's current etag) beside the page listing: a record whose page holds a
copy with its current etag is taken from the page; any other (new, changed, never copied)
is read on its own, with the etag of the version read, and the listing rewrites the page
covering it once it has passed it. A listing then costs a request per 1000 records, one
per page of ``PAGE_SIZE`` records, and one per record added or changed since the last
listing. Pages are a cache: a missing, unreadable or stale page only costs requests, and
a page that cannot be written (a read-only store) is skipped. A copy that is not its
record's (another item's or dataset's, ``identity``) is never served: the record is read
instead; and a record that names another item or dataset is never copied.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import NotFoundError, StoreError
from ..storage import ObjectStore
from ..storage.base import decode_json
from . import layout
from .identity import mismatch

log = logging.getLogger(__name__)

#: Records a page holds (an S3 listing page holds 1000 keys too).
PAGE_SIZE = 1000
_SUFFIX = ".json"
_SEPARATORS = frozenset("\t\n\r")

#: A record copied into a page: (record name, etag of the version copied, the record's JSON).
Row = tuple[str, str, bytes]


@dataclass(frozen=True)
class _Entry:
    """One listed record: its name, listed etag, the page covering it and that page's copy (None: read it)."""

    name: str
    etag: str | None
    page: str | None
    copies: int  # how many copies that page holds
    copy: Any  # the page's copy of the record, parsed
    raw: bytes = b""  # and as stored


def iter_records(store: ObjectStore, dataset_id: str, *, pool: ThreadPoolExecutor, window: int) -> Iterator[tuple[str, Any]]:
    """Yield ``(item_id, record dict or the error reading it)`` for every item record, in key order.

    Records not in a current page are read on ``pool``, at most ``window`` at a time;
    memory holds one page and the reads in flight, whatever the dataset's size.
    """
    pages = _Pages(store, dataset_id)
    pending: deque[tuple[_Entry, "Future[tuple[bytes, str | None]] | None"]] = deque()
    reading = 0
    for entry in pages.entries():
        fut = None if entry.copy is not None else pool.submit(store.get_with_etag, pages.record_key(entry.name))
        reading += fut is not None
        pending.append((entry, fut))
        while pending and (pending[0][1] is None or reading >= window or len(pending) >= PAGE_SIZE):
            head, fut = pending.popleft()
            reading -= fut is not None
            yield pages.take(head, fut)
    while pending:
        head, fut = pending.popleft()
        yield pages.take(head, fut)
    pages.finish()


class _Pages:
    """The pages of one dataset as one listing walks them: which copy serves a record, which page to rewrite."""

    def __init__(self, store: ObjectStore, dataset_id: str) -> None:
        self.store = store
        self.dataset_id = dataset_id
        self.records_prefix = layout.item_records_prefix(dataset_id)
        self.writable = True
        # The segment being passed: the records one page covers, as the listing hands them out.
        self._page: str | None = None
        self._copies = 0  # copies in that page
        self._hits = 0
        self._rows: list[Row] = []
        self._dirty = False
        self._split = False
        self._written: set[str] = set()
        self._started = False

    def record_key(self, name: str) -> str:
        return self.records_prefix + name

    def is_own(self, name: str, record: Any) -> bool:
        """Whether ``record`` says it is the record named ``name`` of this dataset."""
        return mismatch(record, self.record_key(name), id=name[: -len(_SUFFIX)], dataset_id=self.dataset_id) is None

    # --- producer: the record listing beside the page listing ------------------------------

    def entries(self) -> Iterator[_Entry]:
        pages_prefix = layout.record_pages_prefix(self.dataset_id)
        names = (o.key[len(pages_prefix) :] for o in self.store.list(pages_prefix))
        upcoming = next(names, None)
        current: str | None = None
        covered = True  # whether ``current`` covers a listed record
        copies: dict[str, tuple[str, bytes]] = {}
        for info in self.store.list(self.records_prefix):
            name = info.key[len(self.records_prefix) :]
            if not name.endswith(_SUFFIX) or "/" in name:
                continue
            if upcoming is not None and upcoming <= name:
                while upcoming is not None and upcoming <= name:
                    if not covered:
                        self._drop(current)  # type: ignore[arg-type] - it covers no record: stale
                    current, upcoming, covered = upcoming, next(names, None), False
                copies = self._read(current)
            covered = True
            copy, raw = None, b""
            if info.etag is not None and (held := copies.get(name)) is not None and held[0] == info.etag:
                copy, raw = _parsed(held[1]), held[1]
                if copy is not None and not self.is_own(name, copy):
                    copy, raw = None, b""
            yield _Entry(name, info.etag, current, len(copies), copy, raw)
        if not covered:
            self._drop(current)  # type: ignore[arg-type]
        for stale in names:
            self._drop(stale)

    def _read(self, page: str) -> dict[str, tuple[str, bytes]]:
        """A page's copies (etag, record JSON) by record name; an unreadable page holds none (its records are read one by one).

        Kept as bytes and parsed only when served: a parsed page would take ten times the memory.
        """
        key = layout.record_page(self.dataset_id, page)
        try:
            raw = self.store.get_bytes(key)
        except (NotFoundError, StoreError) as exc:
            log.debug("record page %s unreadable, reading its records one by one: %s", key, exc)
            return {}
        copies: dict[str, tuple[str, bytes]] = {}
        for line in raw.split(b"\n"):
            parts = line.split(b"\t", 2)
            if len(parts) == 3:
                try:
                    copies[parts[0].decode()] = (parts[1].decode(), parts[2])
                except UnicodeDecodeError:
                    continue
        return copies

    # --- consumer: records in order, pages rewritten behind them ---------------------------

    def take(self, entry: _Entry, fut: "Future[tuple[bytes, str | None]] | None") -> tuple[str, Any]:
        """The item id and record (or error) of ``entry``, noted in its page's segment."""
        if not self._started or entry.page != self._page:
            self._close_segment()
            self._started = True
            self._page, self._copies = entry.page, entry.copies
            self._hits, self._dirty, self._split = 0, False, False
        item_id = entry.name[: -len(_SUFFIX)]
        if fut is None:
            self._hits += 1
            self._add((entry.name, entry.etag, entry.raw))  # type: ignore[arg-type]
            return item_id, entry.copy
        try:
            raw, etag = fut.result()
            record = decode_json(self.store, self.record_key(entry.name), raw)
        except Exception as exc:  # noqa: BLE001 - handed to the caller as the item's result
            return item_id, exc
        if etag is not None and entry.etag is not None and isinstance(record, dict) and not _SEPARATORS.intersection(etag) and self.is_own(entry.name, record):
            # Rewrite the page only when the copy will serve the next listing (etags agree).
            self._dirty |= etag == entry.etag
            if b"\n" in raw or b"\r" in raw:  # one line a record: compact JSON has no line breaks
                raw = json.dumps(record, separators=(",", ":")).encode()
            self._add((entry.name, etag, raw))
        return item_id, record

    def finish(self) -> None:
        """Write the last segment's page (if it changed)."""
        self._close_segment()

    def _add(self, row: Row) -> None:
        self._rows.append(row)
        if len(self._rows) >= 2 * PAGE_SIZE:  # a page grown past twice its size is split
            self._split = True
            self._write(self._rows[:PAGE_SIZE])
            del self._rows[:PAGE_SIZE]

    def _close_segment(self) -> None:
        if not self._started:
            return
        changed = self._dirty or self._split or self._hits != self._copies
        if changed:
            self._write(self._rows)
            if self._page is not None:
                self._drop(self._page)  # unless just rewritten: its first record is gone
        self._rows = []

    def _write(self, rows: list[Row]) -> None:
        if not self.writable or not rows:
            return
        key = layout.record_page(self.dataset_id, rows[0][0])
        body = b"".join(b"%s\t%s\t%s\n" % (name.encode(), etag.encode(), record) for name, etag, record in rows)
        try:
            self.store.put_bytes(key, body, "text/tab-separated-values")
            self._written.add(rows[0][0])
        except (StoreError, OSError) as exc:
            self.writable = False
            log.warning("could not write record page %s (listings go on reading records one by one): %s", key, exc)

    def _drop(self, page: str) -> None:
        if not self.writable or page in self._written:
            return
        try:
            self.store.delete(layout.record_page(self.dataset_id, page))
        except (StoreError, OSError) as exc:
            self.writable = False
            log.warning("could not delete stale record page %s: %s", page, exc)


def _parsed(raw: bytes) -> Any:
    """A copied record, or None (read the record itself) when the copy is not a JSON object."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None
