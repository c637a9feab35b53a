"""The embedded default: objects as files under a local directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import InvalidKeyError, NotFoundError, StoreError
from .atomic import atomic_write
from .base import ObjectInfo, ObjectStore
from .digest import copy_file_sha256
from .external_sort import sorted_lines
from .keys import MAX_PART_BYTES, validate_key, validate_prefix

#: The store's own temporaries live in one directory at the root whose name contains a backslash,
#: which ``validate_key`` refuses in every key: no object key can name it, list it or write into it.
#: (POSIX file systems only: there a backslash is an ordinary file-name character.)
TMP_DIR = ".partial\\"


class LocalStore(ObjectStore):
    """Objects are files under ``root``; writes go to a temp file then ``os.replace`` (atomic).

    Every valid key is an object, whatever its name (``.partial``, ``x.partial``): temporaries
    live in ``root/TMP_DIR``, a name outside the key space, and are removed when a write fails.
    """

    def __init__(self, root: str | Path, *, create: bool = True) -> None:
        """The store under ``root``; with ``create=False`` a missing directory is a ``StoreError`` (nothing is made)."""
        self.root = Path(root).expanduser().resolve()
        if not create and not self.root.is_dir():
            what = "is not a directory" if self.root.exists() else "does not exist"
            raise StoreError(
                f"no store at {self.root} ({what}): check --store / $MODEL_ADAPTER_STORE; a store is created only by "
                "`model-adapter dataset import` or `model create`"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.uri = f"file://{self.root}"
        # Keys are joined to the root as strings: a Path interns every part of every key it parses (see ``atomic``).
        self._root = str(self.root)
        self._tmp_dir = os.path.join(self._root, TMP_DIR)
        self._tmp_ready = False  # made by the first write, not per write (a read-only store never makes it)
        self._name_max = min(MAX_PART_BYTES, _pathconf(self.root, "PC_NAME_MAX", MAX_PART_BYTES))
        # Room for a key in a full path (PATH_MAX counts the root, the separator and the final NUL).
        self._key_room = _pathconf(self.root, "PC_PATH_MAX", 4096) - len(os.fsencode(self.root)) - 2

    def reopened(self) -> "LocalStore":
        """This store's directory, opened anew."""
        return LocalStore(self.root, create=False)

    def _temp_dir(self) -> str:
        if not self._tmp_ready:
            os.makedirs(self._tmp_dir, exist_ok=True)
            self._tmp_ready = True
        return self._tmp_dir

    def _path(self, key: str) -> str:
        return os.path.join(self._root, self.check_key(key))

    def check_key(self, key: object) -> str:
        """``validate_key``, and each part within the file system's name limit, the whole path within its path limit."""
        validate_key(key)
        encoded = key.encode()  # type: ignore[attr-defined]
        if len(encoded) > self._key_room or any(len(part) > self._name_max for part in encoded.split(b"/")):
            raise InvalidKeyError(
                f"store key is too long for the file system of {self.uri} (a part over {self._name_max} bytes, "
                f"or the whole key over {self._key_room}): {key!r}"
            )
        return key  # type: ignore[return-value]

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        with atomic_write(self._path(key), tmp_dir=self._temp_dir()) as tmp, open(tmp, "wb") as fh:
            fh.write(data)

    def get_bytes(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"{self.uri}: no object {key!r}") from None

    def get_with_etag(self, key: str) -> tuple[bytes, str | None]:
        try:
            with open(self._path(key), "rb") as fh:
                # Objects are replaced, never written in place: the open file is one version.
                return fh.read(), _etag(os.fstat(fh.fileno()))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"{self.uri}: no object {key!r}") from None

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> str:
        with atomic_write(self._path(key), tmp_dir=self._temp_dir()) as tmp:
            digest = copy_file_sha256(path, tmp)
        return digest

    def get_file(self, key: str, path: str | Path) -> None:
        src = self._path(key)
        try:
            with atomic_write(path) as tmp:
                shutil.copyfile(src, tmp)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if not os.path.isfile(src):
                raise NotFoundError(f"{self.uri}: no object {key!r}") from None
            raise

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            fh = open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"{self.uri}: no object {key!r}") from None
        with fh:
            yield fh

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = os.stat(self._path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"{self.uri}: no object {key!r}") from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFoundError(f"{self.uri}: no object {key!r}")
        return ObjectInfo(key=key, size=st.st_size, etag=_etag(st))

    def delete(self, key: str) -> None:
        p = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)
        # Prune now-empty directories so listings stay fast.
        parent = os.path.dirname(p)
        while parent != self._root:
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        # Walk only the deepest directory that the prefix names, in sorted order.
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        yield from self._walk(os.path.join(self._root, base_dir) if base_dir else self._root, prefix)

    def _walk(self, directory: str, prefix: str) -> Iterator[ObjectInfo]:
        # scandir's order is arbitrary: one directory's names are sorted as bare strings (a
        # directory's with a trailing "/", as keys sort), at most ``RUN_LINES`` in memory, the
        # rest in sorted runs on disk: a directory of records grows with the dataset. A name
        # holding a newline is no valid key (``validate_key``) and is skipped.
        try:
            it = os.scandir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return
        with it:  # closed before recursing: sorted_lines reads it all before it returns
            names = sorted_lines(e.name + "/" if e.is_dir() else e.name for e in it if "\n" not in e.name)
        for sort_key in names:
            name = sort_key.rstrip("/")
            if directory == self._root and name == TMP_DIR:
                continue
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, self._root).replace(os.sep, "/")
            if sort_key.endswith("/"):
                if rel.startswith(prefix) or prefix.startswith(rel + "/"):
                    yield from self._walk(path, prefix)
            elif rel.startswith(prefix):
                try:
                    st = os.stat(path)
                except FileNotFoundError:  # deleted since the directory was read
                    continue
                yield ObjectInfo(key=rel, size=st.st_size, etag=_etag(st))


def _pathconf(path: Path, name: str, default: int) -> int:
    """``os.pathconf(path, name)``; ``default`` where the system gives no limit."""
    try:
        value = os.pathconf(path, name)
    except (OSError, ValueError):
        return default
    return value if value > 0 else default


def _etag(st: os.stat_result) -> str:
    """A version tag of a local object: every write replaces the file (a new inode, a new mtime)."""
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"
