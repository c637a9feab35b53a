"""Writing a local file atomically: into a temp file, then ``os.replace`` onto the destination.

Readers see the old file or the whole new one, never a part; a write that fails leaves no
temp file behind. The one helper for every local write the framework must not leave half done
(the local store's objects, downloads of objects and artifacts).

Paths are handled as strings: a ``pathlib.Path`` interns every part of every path it parses
(``sys.intern``). With a unique temp name per object, the interpreter's table of interned
strings filled up every few thousand writes and was copied into a new ~1 MiB block on
whichever thread wrote, and each thread's malloc arena kept one: peak RSS grew with the
number of objects written.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from pathlib import Path
from typing import Iterator, TypeVar

P = TypeVar("P", str, Path)


def temp_beside(dest: str) -> str:
    """A fresh temp name next to ``dest``: ``.<name>.<unique>.partial`` (same directory, so the rename is atomic)."""
    folder, name = os.path.split(dest)
    return os.path.join(folder, f".{name}.{_unique()}.partial")


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

#: Renames of a finished temp file tried before giving up, each after making ``dest``'s directory again.
_RENAME_TRIES = 10


@contextlib.contextmanager
def atomic_write(dest: P, *, tmp_dir: str | Path | None = None, unlink_old: bool = False) -> Iterator[P]:
    """A temp path to write ``dest``'s new content to; it becomes ``dest`` when the block ends without error.

    The temp path is of ``dest``'s type (``str`` or ``Path``): ``temp_beside(dest)`` (its directory
    created first), or a unique name in ``tmp_dir``, which must exist and be on the same file system.
    ``dest``'s directory is created when the rename finds it missing. If the block raises, the temp
    file is removed and ``dest`` is untouched. ``unlink_old`` removes an existing ``dest`` just before
    the rename: for a file no one reads meanwhile, because renaming over an existing file makes ext4
    (``auto_da_alloc``) write the new one back synchronously (~0.3 s per 500 MiB).
    """
    target = os.fspath(dest)
    if tmp_dir is None:
        tmp = temp_beside(target)
        os.makedirs(os.path.dirname(tmp) or ".", exist_ok=True)
    else:
        tmp = os.path.join(tmp_dir, _unique())
    renamed = False
    try:
        yield Path(tmp) if isinstance(dest, Path) else tmp  # type: ignore[misc]
        if unlink_old:
            _unlink(target)
        for attempt in range(_RENAME_TRIES):
            try:
                os.replace(tmp, target)
                break
            except FileNotFoundError:  # dest's directory is missing (the temp file is there: it was just written)
                if attempt == _RENAME_TRIES - 1:
                    raise
                # made again; a concurrent delete pruning empty directories may remove it (or a parent
                # of it) meanwhile, so the rename is tried again. makedirs raises FileExistsError when
                # another writer made the directory and a delete pruned it between its mkdir and its check.
                with contextlib.suppress(FileNotFoundError, FileExistsError):
                    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        renamed = True
    finally:
        if not renamed:
            _unlink(tmp)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
