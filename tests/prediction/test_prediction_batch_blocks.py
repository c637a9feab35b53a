"""The shared memory blocks whole-batch reads come back in: kept for the run's later reads, never under the user's arrays.

Real PNG bytes, a real local store, real worker processes and shared memory.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import Future

import numpy as np
import pytest
from PIL import Image

from adapter_base import Registry
from adapter_base.media import decode_image
from adapter_base.prediction.batch_reader import BatchReader, Decoded
from adapter_base.prediction.decoders import block_prefix
from adapter_base.storage import LocalStore


def png(i: int, size: tuple[int, int] = (64, 48)) -> bytes:
    arr = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def blocks() -> set[str]:
    """The blocks of this process's reading workers that exist now."""
    prefix = block_prefix(os.getpid())
    return {n for n in os.listdir("/dev/shm") if n.startswith(prefix)}


@pytest.fixture
def items(tmp_path):
    with Registry(LocalStore(tmp_path / "store")) as registry:
        ds = registry.create_dataset("d", labels=["a"])
        for i in range(48):
            registry.add_item(ds, f"{i:02d}.png", png(i))
        yield registry.store, list(registry.iter_items(ds))


def read(reader: BatchReader, batch: list) -> tuple[str, list]:
    result = reader.submit(batch).result()
    return result[0], [v.array for v in reader.take(result)]


def expected(item) -> np.ndarray:
    """The item's image as the default ``prepare_item_func`` gives it (its name is its seed)."""
    return decode_image(png(int(item.name.split(".")[0])))


def test_a_later_read_writes_into_the_same_block_and_never_under_arrays_handed_out(items):
    store, listed = items
    reader = BatchReader(store, 1).start()
    try:
        first, kept = read(reader, listed[:16])
        later = [read(reader, listed[s : s + 16]) for s in (16, 32)]
        assert [name for name, _ in later] == [first, first]  # one block, written by every read
        for item, array in zip(listed, kept):  # the first read's arrays still hold its images
            assert array.flags.writeable and np.array_equal(array, expected(item))
        for s, (_, arrays) in zip((16, 32), later):
            assert all(np.array_equal(a, expected(item)) for item, a in zip(listed[s:], arrays))
        assert blocks() == {first}  # kept for the next read
    finally:
        reader.close()
    assert blocks() == set()


def test_a_block_larger_than_its_share_of_the_budget_is_handed_over_as_it_is(items):
    store, listed = items
    reader = BatchReader(store, 1, max_bytes=8 * 9216 * 3 * 4).start()  # keeps blocks of up to 3 images of 64x48
    try:
        names = []
        for s in (0, 16):
            result = reader.submit(listed[s : s + 16]).result()
            values = reader.take(result)
            names.append(result[0])
            assert blocks() == set()  # unlinked once mapped: the arrays hold its memory
            assert all(np.array_equal(v.array, expected(item)) for item, v in zip(listed[s:], values))
        assert names[0] != names[1]
        small, _ = read(reader, listed[:3])
        again, _ = read(reader, listed[3:6])
        assert again == small and blocks() == {small}
    finally:
        reader.close()
    assert blocks() == set()


def test_a_read_given_up_gives_its_block_back_and_a_closed_reader_removes_what_comes_back(items):
    store, listed = items
    reader = BatchReader(store, 1).start()
    first, _ = read(reader, listed[:16])
    late: Future = reader.submit(listed[16:32])  # writes into the kept block
    late.set_exception(TimeoutError("past its deadline"))  # as the feed's watchdog does
    read(reader, listed[32:48])  # one worker: the read given up came back before this one
    assert first in blocks()  # given back for a later read, not left behind nor lost
    reader.drop(reader.submit(listed[:16]))  # given up before it comes back
    reader.close()
    after = reader.submit(listed[:4])  # comes back after the close: its block is removed, not kept
    assert isinstance(reader.take(after.result())[0], Decoded)
    assert blocks() == set()
