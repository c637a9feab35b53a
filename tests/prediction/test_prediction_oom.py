"""``BatchHalving``: out-of-memory errors halve the batch until it fits; every item is tried exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapter_base.prediction.oom import BatchHalving, is_out_of_memory


class OutOfMemoryError(RuntimeError):
    """Named like ``torch.cuda.OutOfMemoryError``."""


def fits(capacity: int):
    """A ``predict`` that runs out of memory on more than ``capacity`` items."""

    def call(chunk):
        if len(chunk) > capacity:
            raise MemoryError(f"{len(chunk)} items do not fit")
        return [x * 10 for x in chunk]

    return call


def test_out_of_memory_errors_are_recognised_by_type_name_or_message():
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(OutOfMemoryError("CUDA"))
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(ValueError("bad input"))


def test_the_batch_halves_until_it_fits_and_the_smaller_size_sticks():
    halving = BatchHalving(8, adaptive=True)
    out = list(halving.run(list(range(8)), fits(2)))
    assert [list(chunk) for chunk, _ in out] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [r for _, r in out] == [[0, 10], [20, 30], [40, 50], [60, 70]]
    assert halving.size == 2
    assert [len(chunk) for chunk, _ in halving.run(list(range(5)), fits(2))] == [2, 2, 1]


def test_without_adaptive_batch_size_the_error_fails_the_whole_batch():
    halving = BatchHalving(4, adaptive=False)
    [(chunk, result)] = list(halving.run([1, 2, 3, 4], fits(2)))
    assert list(chunk) == [1, 2, 3, 4] and isinstance(result, MemoryError) and halving.size == 4


def test_one_item_that_does_not_fit_fails_alone():
    out = list(BatchHalving(4, adaptive=True).run([1, 2, 3, 4], fits(0)))
    assert [list(c) for c, _ in out] == [[1], [2], [3], [4]]
    assert all(isinstance(r, MemoryError) for _, r in out)


def test_other_errors_are_not_retried():
    calls = []

    def broken(chunk):
        calls.append(len(chunk))
        raise ValueError("bad batch")

    [(chunk, result)] = list(BatchHalving(4, adaptive=True).run([1, 2, 3, 4], broken))
    assert calls == [4] and isinstance(result, ValueError) and len(chunk) == 4


@given(n=st.integers(0, 64), batch=st.integers(1, 32), capacity=st.integers(1, 32))
def test_every_item_is_predicted_once_in_order_in_calls_that_fit(n, batch, capacity):
    halving = BatchHalving(batch, adaptive=True)
    items = list(range(n))
    out = list(halving.run(items, fits(capacity)))
    assert [x for chunk, _ in out for x in chunk] == items
    assert all(not isinstance(r, BaseException) and len(chunk) <= capacity for chunk, r in out)
    assert halving.size <= batch and (halving.size == batch or halving.size <= capacity)
