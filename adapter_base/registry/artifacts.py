"""Moving artifact trees between a local directory and the store, with SHA-256 digests."""

from __future__ import annotations

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from ..concurrency import ordered_map
from ..entities import ArtifactFile
from ..errors import StoreError, ValidationError
from ..storage import ObjectStore

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def local_files(root: str | Path) -> list[str]:
    """Every regular file under ``root`` as sorted POSIX paths relative to it (links are refused)."""
    root = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink():
                raise ValidationError("artifacts", str(full.relative_to(root)), "symbolic links are not uploaded")
            out.append(full.relative_to(root).as_posix())
    return sorted(out)


def safe_destination(dest_dir: Path, rel: str) -> Path:
    """``dest_dir / rel`` if it stays inside ``dest_dir``; otherwise a ``ValidationError``."""
    root = dest_dir.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise ValidationError("artifacts", rel, f"path escapes the target directory {root}")
    return target


def upload_tree(
    store: ObjectStore,
    root: str | Path,
    key_of: Callable[[str], str],
    pool: ThreadPoolExecutor,
    window: int = 16,
) -> list[ArtifactFile]:
    """Upload every file under ``root`` to ``key_of(relative_path)``; returns their manifest rows."""
    root = Path(root)

    def one(rel: str) -> ArtifactFile:
        path = root / rel
        digest = sha256_file(path)
        size = path.stat().st_size
        store.put_file(key_of(rel), path)
        return ArtifactFile(path=rel, size=size, sha256=digest)

    files = []
    for rel, result in ordered_map(one, local_files(root), pool=pool, window=window):
        if isinstance(result, BaseException):
            raise result
        files.append(result)
    return files


def download_verified(store: ObjectStore, key: str, dest: Path, sha256: str) -> None:
    """Stream ``key`` to ``dest`` while hashing; the file appears only if the digest matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    h = hashlib.sha256()
    try:
        with store.open_read(key) as src, open(tmp, "wb") as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha256:
            raise StoreError(f"digest mismatch for {key!r}: expected {sha256}, got {h.hexdigest()}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download_tree(
    store: ObjectStore,
    files: Iterable[ArtifactFile],
    key_of: Callable[[str], str],
    dest_dir: str | Path,
    pool: ThreadPoolExecutor,
    window: int = 16,
) -> None:
    """Download manifest rows into ``dest_dir``, verifying each digest; raises on the first failure."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)

    def one(f: ArtifactFile) -> None:
        download_verified(store, key_of(f.path), safe_destination(dest_dir, f.path), f.sha256)

    for _, result in ordered_map(one, files, pool=pool, window=window):
        if isinstance(result, BaseException):
            raise result
