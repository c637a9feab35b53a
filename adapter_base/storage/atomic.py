"""Writing a local file atomically: into a temp file, then ``os.replace`` onto the destination.

Readers see the old file or the whole new one, never a part; a write that fails leaves no
temp file behind. The one helper for every local write the framework must not leave half done
(the local store's objects, downloads of objects and artifacts).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from pathlib import Path
from typing import Iterator


def temp_beside(dest: Path) -> Path:
    """A fresh temp name next to ``dest``: ``.<name>.<unique>.partial`` (same directory, so the rename is atomic)."""
    return dest.with_name(f".{dest.name}.{_unique()}.partial")


class _Names:
    """Unique temp names without a random draw per write: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # a forked child draws its own prefix

    def reset(self) -> None:
        self.prefix = uuid.uuid4().hex[:12]
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):x}"


_unique = _Names()


@contextlib.contextmanager
def atomic_write(dest: str | Path, *, tmp_dir: Path | None = None, unlink_old: bool = False) -> Iterator[Path]:
    """A temp path to write ``dest``'s new content to; it becomes ``dest`` when the block ends without error.

    The temp file is ``temp_beside(dest)`` (its directory created first), or a unique name in
    ``tmp_dir``, which must exist and be on the same file system. ``dest``'s directory is
    created when the rename finds it missing. If the block raises, the temp file is removed and
    ``dest`` is untouched. ``unlink_old`` removes an existing ``dest`` just before the rename:
    for a file no one reads meanwhile, because renaming over an existing file makes ext4
    (``auto_da_alloc``) write the new one back synchronously (~0.3 s per 500 MiB).
    """
    dest = Path(dest)
    if tmp_dir is None:
        tmp = temp_beside(dest)
        tmp.parent.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tmp_dir / _unique()
    renamed = False
    try:
        yield tmp
        if unlink_old:
            dest.unlink(missing_ok=True)
        try:
            os.replace(tmp, dest)
        except FileNotFoundError:  # dest's directory is missing (the temp file is there: it was just written)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        renamed = True
    finally:
        if not renamed:
            tmp.unlink(missing_ok=True)
