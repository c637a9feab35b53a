"""Moving artifact trees between a local directory and the store, with SHA-256 digests."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from ..concurrency import map_all
from ..entities import ArtifactFile
from ..errors import StoreError, ValidationError
from ..local_dirs import MARKER, safe_join
from ..storage import ObjectStore
from ..storage.atomic import atomic_write
from ..storage.digest import OVERLAP_HASH_MIN, copy_stream_sha256

#: Transfers in flight per tree: more than the pool's threads, so a slow file never idles the others.
DEFAULT_WINDOW = 64


def local_files(root: str | Path) -> list[str]:
    """Every regular file under ``root`` as sorted POSIX paths relative to it.

    Anything else is refused with a ``ValidationError`` naming it, files and folders
    alike: a symbolic link (to a file or a directory) or a device, pipe or socket is
    never silently left out of a version. The framework's own folder marker (``MARKER``,
    at the top) is not an artifact.
    """
    out: list[str] = []
    pending = [(os.fspath(root), "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if rel == MARKER:
                    continue
                if entry.is_symlink():
                    kind = "directory" if entry.is_dir() else "file"
                    raise ValidationError("artifacts", rel, f"is a symbolic link to a {kind}: links are not uploaded (write the files themselves)")
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    out.append(rel)
                else:
                    raise ValidationError("artifacts", rel, "is not a regular file (a device, pipe or socket) and cannot be uploaded")
    return sorted(out)


def upload_file(store: ObjectStore, key: str, path: Path, rel: str) -> ArtifactFile:
    """Upload the file at ``path`` to ``key``; returns its manifest row (for ``rel``).

    The digest is the store's, computed from the bytes it sent (no separate pass).
    """
    size = path.stat().st_size
    return ArtifactFile(path=rel, size=size, sha256=store.put_file(key, path))


def upload_tree(
    store: ObjectStore,
    root: str | Path,
    key_of: Callable[[str], str],
    pool: ThreadPoolExecutor,
    window: int = DEFAULT_WINDOW,
) -> list[ArtifactFile]:
    """Upload every file under ``root`` to ``key_of(relative_path)``; returns their manifest rows."""
    root = Path(root)

    def one(rel: str) -> ArtifactFile:
        return upload_file(store, key_of(rel), root / rel, rel)

    return map_all(one, local_files(root), pool, window)


def download_verified(store: ObjectStore, key: str, dest: Path, sha256: str, size: int | None = None) -> None:
    """Stream ``key`` to ``dest`` while hashing; the file appears only if the digest matches.

    With ``size`` (the manifest's) at or above ``OVERLAP_HASH_MIN`` the digest is computed
    on a second thread as the chunks arrive, in step with the download.
    """
    with atomic_write(dest, unlink_old=True) as tmp:  # every load re-verifies: no reader meanwhile
        with store.open_read(key) as src, open(tmp, "wb") as out:
            got = copy_stream_sha256(src, out, overlap=size is not None and size >= OVERLAP_HASH_MIN)
        if got != sha256:
            raise StoreError(f"digest mismatch for {key!r}: expected {sha256}, got {got}")


def download_tree(
    store: ObjectStore,
    files: Iterable[ArtifactFile],
    key_of: Callable[[str], str],
    dest_dir: str | Path,
    pool: ThreadPoolExecutor,
    window: int = DEFAULT_WINDOW,
) -> None:
    """Download manifest rows into ``dest_dir``, verifying each digest; raises on the first failure."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)

    def one(f: ArtifactFile) -> None:
        download_verified(store, key_of(f.path), safe_join(dest_dir, f.path, what="artifacts"), f.sha256, f.size)

    map_all(one, files, pool, window)
