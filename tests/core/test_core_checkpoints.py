"""Checkpoints are published as whole sets: a push that dies half-way leaves the previous set."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from adapter_base.registry import layout
from adapter_base.registry.checkpoints import CheckpointSync, checkpoint_key, stored_checkpoints
from adapter_base.storage import LocalStore


class DiesOnUpload(LocalStore):
    """A store whose ``put_file`` raises from the ``n``-th call on (the process was killed there)."""

    def __init__(self, root: Path, n: int) -> None:
        super().__init__(root)
        self.left = n

    def put_file(self, key: str, path: str | Path, content_type: str | None = None) -> str:
        self.left -= 1
        if self.left <= 0:
            raise OSError(f"killed while uploading {key}")
        return super().put_file(key, path, content_type)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as p:  # one thread: uploads happen in path order
        yield p


def _write_epoch(local: Path, epoch: int) -> None:
    for name in ("optimizer.bin", "weights.bin"):
        (local / name).write_text(f"{name} of epoch {epoch}")
    (local / "state.json").write_text(f'{{"epoch": {epoch}}}')


def _fresh(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def _restored(store: LocalStore, tmp_path: Path, pool: ThreadPoolExecutor) -> dict[str, str]:
    local = _fresh(tmp_path, f"restore-{len(os.listdir(tmp_path))}")
    assert CheckpointSync(store, "m1", local, pool).restore() == local
    return {p.name: p.read_text() for p in local.iterdir()}


def test_a_push_killed_half_way_leaves_the_previous_set_whole(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    store = LocalStore(tmp_path / "store")
    local = _fresh(tmp_path, "run")
    sync = CheckpointSync(store, "m1", local, pool)
    _write_epoch(local, 0)
    assert sync.push() == 3

    dying = CheckpointSync(DiesOnUpload(tmp_path / "store", n=2), "m1", local, pool)
    dying.restore()  # knows epoch 0's set, as a rerun would
    _write_epoch(local, 1)
    with pytest.raises(OSError, match="killed while uploading"):
        dying.push()  # optimizer.bin of epoch 1 is uploaded, state.json and weights.bin are not

    assert _restored(store, tmp_path, pool) == {
        "optimizer.bin": "optimizer.bin of epoch 0",
        "weights.bin": "weights.bin of epoch 0",
        "state.json": '{"epoch": 0}',
    }
    published = stored_checkpoints(store, "m1")
    assert published is not None and published.generation == 1
    left = {o.key for o in store.list(layout.checkpoints_prefix("m1"))}
    assert left == {layout.checkpoint_set("m1")} | {checkpoint_key(published, f.path) for f in published.files}, "the killed push's upload is removed"


def test_unchanged_files_are_not_uploaded_again_and_deleted_ones_leave_the_set(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    store = LocalStore(tmp_path / "store")
    local = _fresh(tmp_path, "run")
    sync = CheckpointSync(store, "m1", local, pool)
    (local / "epoch-0.pt").write_text("zero")
    (local / "config.json").write_text("{}")
    assert sync.push() == 2
    assert sync.push() == 0  # nothing changed: no upload, no new record
    assert stored_checkpoints(store, "m1").generation == 1  # type: ignore[union-attr]

    (local / "epoch-0.pt").unlink()  # keep-the-last-one
    (local / "epoch-1.pt").write_text("one")
    assert sync.push() == 1
    published = stored_checkpoints(store, "m1")
    assert published is not None and published.generation == 2
    assert published.generations == {"config.json": 1, "epoch-1.pt": 2}
    assert {o.key for o in store.list(layout.checkpoint_files_prefix("m1"))} == {checkpoint_key(published, f.path) for f in published.files}
    assert _restored(store, tmp_path, pool) == {"config.json": "{}", "epoch-1.pt": "one"}

    (local / "epoch-1.pt").unlink()
    (local / "config.json").unlink()
    sync.push()  # an emptied directory publishes an empty set: nothing to resume from
    assert stored_checkpoints(store, "m1").files == []  # type: ignore[union-attr]
    assert CheckpointSync(store, "m1", _fresh(tmp_path, "empty"), pool).restore() is None

    sync.clear()
    assert list(store.list(layout.checkpoints_prefix("m1"))) == []


def test_a_file_rewritten_within_one_clock_tick_is_still_uploaded(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    """Same size and same mtime (file system timestamps are coarse): the digest tells."""
    store = LocalStore(tmp_path / "store")
    local = _fresh(tmp_path, "run")
    sync = CheckpointSync(store, "m1", local, pool)
    _write_epoch(local, 0)
    sync.push()
    before = {name: os.stat(local / name) for name in os.listdir(local)}
    _write_epoch(local, 1)  # the same sizes
    for name, st in before.items():
        os.utime(local / name, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sync.push() == 3
    assert _restored(store, tmp_path, pool)["state.json"] == '{"epoch": 1}'
    assert sync.push() == 0  # verified unchanged: nothing uploaded, no new set


def test_a_restored_file_whose_bytes_changed_in_the_store_is_refused(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    store = LocalStore(tmp_path / "store")
    local = _fresh(tmp_path, "run")
    (local / "weights.bin").write_text("good")
    CheckpointSync(store, "m1", local, pool).push()
    published = stored_checkpoints(store, "m1")
    assert published is not None
    store.put_bytes(checkpoint_key(published, "weights.bin"), b"evil")
    with pytest.raises(Exception, match="digest mismatch"):
        CheckpointSync(store, "m1", _fresh(tmp_path, "again"), pool).restore()


def test_checkpoints_stored_by_an_earlier_layout_are_restored_then_published(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    """Before set records, checkpoints were plain keys under the prefix: an interrupted run still resumes."""
    store = LocalStore(tmp_path / "store")
    prefix = layout.checkpoints_prefix("m1")
    store.put_bytes(prefix + "state.json", b'{"epoch": 3}')
    store.put_bytes(prefix + "sub/weights.bin", b"w3")
    store.put_bytes(prefix + "files/notes.txt", b"n")  # under the new layout's folder, but no push wrote it
    local = _fresh(tmp_path, "run")
    sync = CheckpointSync(store, "m1", local, pool)
    assert sync.restore() == local
    assert (local / "state.json").read_bytes() == b'{"epoch": 3}' and (local / "sub" / "weights.bin").read_bytes() == b"w3"
    assert (local / "files" / "notes.txt").read_bytes() == b"n"
    assert sync.push() == 3
    published = stored_checkpoints(store, "m1")
    assert published is not None and {f.path for f in published.files} == {"state.json", "sub/weights.bin", "files/notes.txt"}
