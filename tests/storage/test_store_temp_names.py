"""Names like the local store's temporaries are ordinary keys on every backend.

The local store once kept its temporaries at ``<root>/.partial`` and hid every name ending
in ``.partial``: the key ``.partial`` crashed a write, and a checkpoint ``optimizer.partial``
was never listed (so never resumed) and survived deletion, while S3 kept both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter_base.errors import InvalidKeyError, StoreError
from adapter_base.storage import LocalStore, ObjectStore
from adapter_base.storage.local import TMP_DIR

NAMES = [".partial", "x/.partial", "ckpt/optimizer.partial", "y.partial/z", "z/.partial/inner"]


def test_partial_names_round_trip_list_and_delete(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"file")
    for n, key in enumerate(NAMES):
        if n % 2:
            store.put_file(key, src)
        else:
            store.put_bytes(key, key.encode())
    assert [o.key for o in store.list()] == sorted(NAMES)
    assert [o.key for o in store.list("ckpt/")] == ["ckpt/optimizer.partial"]
    for n, key in enumerate(NAMES):
        assert store.get_bytes(key) == (b"file" if n % 2 else key.encode())
        store.get_file(key, tmp_path / "out" / str(n))
    for key in NAMES:
        store.delete(key)
    assert list(store.list()) == []


def test_the_temporary_directory_is_outside_the_key_space(tmp_path: Path) -> None:
    with pytest.raises(InvalidKeyError):
        LocalStore(tmp_path).put_bytes(TMP_DIR + "/x", b"x")


def test_a_failed_write_leaves_no_temporary(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    store.put_bytes("taken", b"a file where a folder is needed")
    with pytest.raises((OSError, StoreError)):
        store.put_bytes("taken/child", b"x")
    with pytest.raises((OSError, StoreError)):
        store.put_file("taken/child", tmp_path / "no-such-source")
    assert list((store.root / TMP_DIR).iterdir()) == []
    assert [o.key for o in store.list()] == ["taken"]
