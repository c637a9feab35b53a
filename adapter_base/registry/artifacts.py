"""Moving artifact trees between a local directory and the store, with SHA-256 digests."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from ..concurrency import map_all
from ..entities import ArtifactFile
from ..errors import StoreError, ValidationError
from ..storage import ObjectStore
from ..storage.digest import OVERLAP_HASH_MIN, copy_stream_sha256

#: Transfers in flight per tree: more than the pool's threads, so a slow file never idles the others.
DEFAULT_WINDOW = 64


def local_files(root: str | Path) -> list[str]:
    """Every regular file under ``root`` as sorted POSIX paths relative to it (links are refused)."""
    top = os.fspath(root)
    out = []
    for dirpath, _, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in filenames:
            if os.path.islink(os.path.join(dirpath, name)):
                raise ValidationError("artifacts", prefix + name, "symbolic links are not uploaded")
            out.append(prefix + name)
    return sorted(out)


def safe_destination(dest_dir: Path, rel: str) -> Path:
    """``dest_dir / rel`` if it stays inside ``dest_dir``; otherwise a ``ValidationError``."""
    root = dest_dir.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise ValidationError("artifacts", rel, f"path escapes the target directory {root}")
    return target


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
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with store.open_read(key) as src, open(tmp, "wb") as out:
            got = copy_stream_sha256(src, out, overlap=size is not None and size >= OVERLAP_HASH_MIN)
        if got != sha256:
            raise StoreError(f"digest mismatch for {key!r}: expected {sha256}, got {got}")
        # Unlink first: renaming over an existing file makes ext4 (auto_da_alloc) write the
        # new one back synchronously, ~0.3 s per 500 MiB; every load re-verifies anyway.
        dest.unlink(missing_ok=True)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


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
        download_verified(store, key_of(f.path), safe_destination(dest_dir, f.path), f.sha256, f.size)

    map_all(one, files, pool, window)
