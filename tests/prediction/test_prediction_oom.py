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


def rejects(bad: set[int], calls: list[int] | None = None):
    """A ``predict`` that raises, naming the first bad item, for any call holding one of ``bad``."""

    def call(chunk):
        if calls is not None:
            calls.append(len(chunk))
        culprits = [x for x in chunk if x in bad]
        if culprits:
            raise ValueError(f"cannot read item {culprits[0]}")
        return [x * 10 for x in chunk]

    return call


def test_another_error_is_narrowed_down_to_the_item_that_causes_it():
    calls: list[int] = []
    halving = BatchHalving(16, adaptive=True)
    out = list(halving.run(list(range(16)), rejects({11}, calls)))
    failed = [(list(chunk), str(r)) for chunk, r in out if isinstance(r, BaseException)]
    assert failed == [([11], "cannot read item 11")]
    assert [x for chunk, r in out if not isinstance(r, BaseException) for x in chunk] == [x for x in range(16) if x != 11]
    assert sorted(calls, reverse=True) == [16, 8, 8, 4, 4, 2, 2, 1, 1]  # log2(16) levels, two calls each
    assert halving.size == 16  # not an out-of-memory error: the batch size stays


def test_a_predict_that_always_fails_fails_every_item_alone_within_the_cap():
    calls: list[int] = []
    out = list(BatchHalving(4, adaptive=True).run([1, 2, 3, 4], rejects({1, 2, 3, 4}, calls)))
    assert [list(c) for c, _ in out] == [[1], [2], [3], [4]]
    assert [str(r) for _, r in out] == [f"cannot read item {x}" for x in (1, 2, 3, 4)]
    assert calls == [4, 2, 1, 1, 2, 1, 1]


def test_timeouts_and_isolate_false_fail_the_whole_call():
    def hung(chunk):
        raise TimeoutError("predict did not return")

    [(chunk, result)] = list(BatchHalving(4, adaptive=True).run([1, 2, 3, 4], hung))
    assert len(chunk) == 4 and isinstance(result, TimeoutError)
    [(chunk, result)] = list(BatchHalving(4, adaptive=True, isolate=False).run([1, 2, 3, 4], rejects({2})))
    assert len(chunk) == 4 and isinstance(result, ValueError)


@given(n=st.integers(0, 40), batch=st.integers(1, 16), bad=st.sets(st.integers(0, 39), max_size=6))
def test_exactly_the_bad_items_fail_and_calls_stay_bounded(n, batch, bad):
    calls: list[int] = []
    halving = BatchHalving(batch, adaptive=True)
    items = list(range(n))
    out = list(halving.run(items, rejects(bad, calls)))
    assert [x for chunk, _ in out for x in chunk] == items
    assert {x for chunk, r in out if isinstance(r, BaseException) for x in chunk} == bad & set(items)
    batches = -(-n // batch)
    assert len(calls) <= batches * (2 * batch - 1)


@given(n=st.integers(0, 64), batch=st.integers(1, 32), capacity=st.integers(1, 32))
def test_every_item_is_predicted_once_in_order_in_calls_that_fit(n, batch, capacity):
    halving = BatchHalving(batch, adaptive=True)
    items = list(range(n))
    out = list(halving.run(items, fits(capacity)))
    assert [x for chunk, _ in out for x in chunk] == items
    assert all(not isinstance(r, BaseException) and len(chunk) <= capacity for chunk, r in out)
    assert halving.size <= batch and (halving.size == batch or halving.size <= capacity)
