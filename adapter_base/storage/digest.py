"""SHA-256 of what the stores write and read: a file's, or a stream's as it is consumed."""

from __future__ import annotations

import hashlib
import queue
import shutil
from pathlib import Path
from typing import BinaryIO

from ..concurrency import in_thread

#: Read size for streamed copies (bigger reads cost page faults, not less time).
CHUNK = 1 << 20
#: From this size a copy is hashed on a second thread beside the copying one.
OVERLAP_HASH_MIN = 8 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with open(path, "rb") as fh:
        if hasattr(hashlib, "file_digest"):  # Python 3.11+: reads into one reused buffer
            return hashlib.file_digest(fh, "sha256").hexdigest()
        h = hashlib.sha256()
        while chunk := fh.read(CHUNK):
            h.update(chunk)
        return h.hexdigest()


class HashingReader:
    """A read-only stream over ``fh`` that feeds every byte it returns to ``h``, in order."""

    def __init__(self, fh: BinaryIO, h: "hashlib._Hash") -> None:
        self._fh, self._h = fh, h

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._h.update(data)
        return data


def copy_file_sha256(src: str | Path, dst: str | Path) -> str:
    """Copy ``src`` to ``dst``; returns the SHA-256 of the bytes copied.

    A small file is read once, hashed and written; a large one is copied by the kernel
    (``shutil.copyfile``) while a second thread hashes it from the page cache.
    """
    with open(src, "rb") as fh:
        size = fh.seek(0, 2)
        if size < OVERLAP_HASH_MIN:
            fh.seek(0)
            data = fh.read()
            Path(dst).write_bytes(data)
            return hashlib.sha256(data).hexdigest()
    pending = in_thread(lambda: sha256_file(src), "copy-hash")
    shutil.copyfile(src, dst)
    return pending.result()


def copy_stream_sha256(src: BinaryIO, out: BinaryIO, *, overlap: bool = False) -> str:
    """Copy ``src`` to ``out`` in chunks; returns the SHA-256 of the bytes copied.

    With ``overlap`` a second thread hashes the chunks (in order) while this one reads
    and writes the next: for large objects, where the hash would otherwise add its own time.
    """
    h = hashlib.sha256()
    if not overlap:
        shutil.copyfileobj(HashingReader(src, h), out, CHUNK)
        return h.hexdigest()
    chunks: "queue.Queue[bytes | None]" = queue.Queue(maxsize=8)

    def hash_all() -> None:
        while (chunk := chunks.get()) is not None:
            h.update(chunk)  # releases the GIL: overlaps the socket reads and file writes

    hasher = in_thread(hash_all, "copy-hash")

    def put(chunk: bytes | None) -> None:
        while True:
            try:
                chunks.put(chunk, timeout=0.5)
                return
            except queue.Full:
                if hasher.done():  # the hasher died: raise its error rather than wait forever
                    hasher.result()
                    return

    try:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            put(chunk)
    finally:
        put(None)
        hasher.result()
    return h.hexdigest()
