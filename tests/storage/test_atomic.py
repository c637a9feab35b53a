"""``atomic_write``: the destination holds the old content or the whole new one, and no temp file is left."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from adapter_base.storage import LocalStore
from adapter_base.storage.atomic import atomic_write


def test_the_new_content_appears_only_when_the_block_ends(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "f.bin"
    with atomic_write(dest) as tmp:
        tmp.write_bytes(b"new")
        assert not dest.exists() and tmp.parent == dest.parent and tmp.name.endswith(".partial")
    assert dest.read_bytes() == b"new"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]


@pytest.mark.parametrize("unlink_old", [False, True])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, unlink_old: bool) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(dest, unlink_old=unlink_old) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("cut")
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_temp_directory_keeps_temporaries_apart_and_dest_folders_appear_on_success(tmp_path: Path) -> None:
    tmp_dir, dest = tmp_path / "tmp", tmp_path / "a" / "b" / "f"
    tmp_dir.mkdir()  # the caller's (a store's): atomic_write does not make it
    with pytest.raises(RuntimeError), atomic_write(dest, tmp_dir=tmp_dir) as tmp:
        assert tmp.parent == tmp_dir
        tmp.write_bytes(b"x")
        raise RuntimeError("cut")
    assert not (tmp_path / "a").exists() and list(tmp_dir.iterdir()) == []
    with atomic_write(dest, tmp_dir=tmp_dir) as tmp:
        tmp.write_bytes(b"y")
    assert dest.read_bytes() == b"y" and list(tmp_dir.iterdir()) == []


def test_a_store_made_again_on_a_removed_and_recreated_root_writes(tmp_path: Path) -> None:
    """Each store makes its temp directory once: nothing process-wide remembers one that was removed since."""
    root = tmp_path / "store"
    LocalStore(root).put_bytes("a", b"1")
    shutil.rmtree(root)
    store = LocalStore(root)
    store.put_bytes("a", b"2")
    assert store.get_bytes("a") == b"2"
    assert list(store.list()) and [o.key for o in store.list()] == ["a"]


def test_a_directory_pruned_while_it_is_made_again_is_made_once_more(tmp_path, monkeypatch):
    """Another process deleting the last object of a directory prunes it, which can happen between this
    write making the directory and renaming into it: the rename is tried again, not given up."""
    real_makedirs = os.makedirs
    made: list[str] = []

    def made_then_pruned(path, exist_ok=False):
        real_makedirs(path, exist_ok=exist_ok)
        made.append(path)
        if len(made) == 1:
            os.rmdir(path)  # the other process's delete, just after

    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    monkeypatch.setattr(os, "makedirs", made_then_pruned)
    dest = tmp_path / "claims" / "000002" / "mine.json"
    with atomic_write(str(dest), tmp_dir=str(tmp_dir)) as tmp, open(tmp, "wb") as fh:
        fh.write(b"{}")
    assert dest.read_bytes() == b"{}" and len(made) > 1  # made, pruned, made again
    assert list(tmp_dir.iterdir()) == []


def test_a_directory_made_by_another_writer_and_pruned_during_makedirs_is_made_once_more(tmp_path, monkeypatch):
    """Another writer makes the directory and a delete prunes it between this makedirs' mkdir and its
    check: makedirs raises FileExistsError for a directory that is not there (seen with six processes
    creating one name, whose claims share a directory). The rename is tried again."""
    real_makedirs = os.makedirs
    calls: list[str] = []

    def raced(path, exist_ok=False):
        calls.append(path)
        if len(calls) == 1:
            raise FileExistsError(17, "File exists", path)
        real_makedirs(path, exist_ok=exist_ok)

    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    monkeypatch.setattr(os, "makedirs", raced)
    dest = tmp_path / "locks" / "model-name" / "net" / "mine.json"
    with atomic_write(str(dest), tmp_dir=str(tmp_dir)) as tmp, open(tmp, "wb") as fh:
        fh.write(b"{}")
    assert dest.read_bytes() == b"{}" and calls[:2] == [str(dest.parent)] * 2  # raised, then made
    assert list(tmp_dir.iterdir()) == []
