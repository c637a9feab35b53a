"""``Backpressure``: the prepare window widens and narrows within its bounds, and stays under the byte budget."""

from __future__ import annotations

import threading
import time

from adapter_base import PredictionOptions
from adapter_base.media import MIB
from adapter_base.prediction.backpressure import Backpressure


def policy(**kw) -> Backpressure:
    base = {"batch_size": 8, "prefetch_batches": 4, "io_chunk": 4, "prepared_bytes_budget": None}
    return Backpressure(PredictionOptions(**{**base, **kw}))


def test_adaptive_window_starts_at_two_tasks_and_moves_one_task_at_a_time_within_its_bounds():
    bp = policy()
    assert bp.window() == 8  # 2 * io_chunk
    bp.backlogged()
    assert bp.window() == 8  # never below two tasks
    seen = []
    for _ in range(10):
        bp.starved()
        seen.append(bp.window())
    assert seen == [12, 16, 20, 24, 28, 32, 32, 32, 32, 32]  # up to prefetch_batches * batch_size
    bp.backlogged()
    assert bp.window() == 28


def test_without_adaptive_prefetch_the_window_stays_at_its_widest():
    bp = policy(adaptive_prefetch=False)
    assert bp.window() == 32
    bp.backlogged()
    bp.starved()
    assert bp.window() == 32


def test_a_small_batch_caps_the_window_below_two_tasks():
    bp = policy(batch_size=1, prefetch_batches=1, io_chunk=4)
    assert (bp.narrowest, bp.widest, bp.window()) == (4, 4, 4)


def test_budget_prepares_one_item_until_a_size_is_known_then_what_fits():
    bp = policy(prepared_bytes_budget=10 * MIB)
    assert bp.window() == 1
    bp.observe(3 * MIB)
    assert bp.window() == 3  # 10 MiB // 3 MiB
    assert bp.hold(3 * MIB, cancelled=lambda: False)
    assert bp.window() == 2  # 7 MiB of room
    bp.observe(0)  # a skipped item does not lower the largest size seen
    assert bp.window() == 2
    assert bp.hold(6 * MIB, cancelled=lambda: False)
    assert bp.window() == 1  # never zero: the next item waits in hold()
    bp.release(9 * MIB)
    assert bp.window() == 3


def test_budget_window_never_exceeds_the_adaptive_window():
    bp = policy(prepared_bytes_budget=1000 * MIB)
    bp.observe(1)
    assert bp.window() == 8


def test_an_item_larger_than_the_whole_budget_is_named_oversize():
    bp = policy(prepared_bytes_budget=2 * MIB)
    assert bp.oversize(2 * MIB) is None
    assert bp.oversize(3 * MIB) == "holds 3.0 MiB, more than prepared_bytes_budget (2.0 MiB)"
    assert policy().oversize(10**12) is None  # no budget, no limit


def test_hold_waits_for_a_release_and_gives_up_when_cancelled():
    bp = policy(prepared_bytes_budget=4 * MIB)
    assert bp.hold(3 * MIB, cancelled=lambda: False)
    assert not bp.fits(2 * MIB)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(bp.hold(2 * MIB, cancelled=lambda: False)))
    waiter.start()
    time.sleep(0.3)
    assert got == []  # still waiting for room
    bp.release(3 * MIB)
    waiter.join(5)
    assert got == [True]
    stop = threading.Event()
    late: list[bool] = []
    waiter = threading.Thread(target=lambda: late.append(bp.hold(3 * MIB, cancelled=stop.is_set)))
    waiter.start()
    stop.set()
    waiter.join(5)
    assert late == [False] and bp.budget is not None and bp.budget.held == 2 * MIB


def test_without_a_budget_everything_fits_at_once():
    bp = policy()
    bp.observe(10**12)
    assert bp.window() == 8 and bp.fits(10**12) and bp.hold(10**12, cancelled=lambda: True)


def test_reservations_go_in_turn_order_and_a_passed_turn_reserves_nothing():
    bp = policy(prepared_bytes_budget=10 * MIB)
    got: list[object] = []
    later = threading.Thread(target=lambda: got.append(bp.reserve(1, 1 * MIB, cancelled=lambda: False, waiting=lambda: None)))
    later.start()
    time.sleep(0.3)
    assert got == [] and bp.budget is not None and bp.budget.held == 0  # turn 1 waits for turn 0, room or not
    first = bp.reserve(0, 2 * MIB, cancelled=lambda: False, waiting=lambda: None)
    later.join(5)
    assert first is not None and got and got[0] is not None
    assert (bp.budget.held, bp.budget.ahead) == (3 * MIB, 3 * MIB)
    bp.pass_turn(3)  # passed out of order: turn 2 is still to come
    assert bp.reserve(3, 1, cancelled=lambda: False, waiting=lambda: None) is None
    bp.pass_turn(2)
    assert bp.reserve(4, 1 * MIB, cancelled=lambda: False, waiting=lambda: None) is not None


def test_a_reservation_shrinks_to_what_decoding_kept_then_is_taken_up_or_dropped():
    bp = policy(prepared_bytes_budget=10 * MIB)
    kept = bp.reserve(0, 6 * MIB, cancelled=lambda: False, waiting=lambda: None)
    failed = bp.reserve(1, 3 * MIB, cancelled=lambda: False, waiting=lambda: None)
    assert kept is not None and failed is not None and bp.budget is not None
    kept.shrink(2 * MIB)  # the decoder's buffers are gone, the array stays
    assert (bp.budget.held, bp.budget.ahead) == (5 * MIB, 5 * MIB)
    assert kept.take() == 2 * MIB and (bp.budget.held, bp.budget.ahead) == (5 * MIB, 3 * MIB)
    failed.drop()
    failed.drop()
    kept.shrink(0)  # after take: the consuming side releases it
    assert (bp.budget.held, bp.budget.ahead) == (2 * MIB, 0)
    bp.release(2 * MIB)
    assert bp.budget.held == 0


def test_the_next_turn_without_room_asks_for_held_bytes_and_goes_once_they_are_back():
    bp = policy(prepared_bytes_budget=4 * MIB)
    assert bp.hold(3 * MIB, cancelled=lambda: False)  # a partial batch's bytes
    asked = threading.Event()
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(bp.reserve(0, 2 * MIB, cancelled=lambda: False, waiting=asked.set)))
    waiter.start()
    assert asked.wait(5) and got == []
    bp.release(3 * MIB)
    waiter.join(5)
    assert got and got[0] is not None


def test_bytes_reserved_ahead_never_keep_the_consuming_side_waiting():
    bp = policy(prepared_bytes_budget=4 * MIB)
    assert bp.reserve(0, 4 * MIB, cancelled=lambda: False, waiting=lambda: None) is not None
    # a later item's decode holds the whole budget; an earlier item's input is still admitted
    assert bp.fits(1 * MIB) and bp.hold(1 * MIB, cancelled=lambda: False)
    assert not bp.fits(1 * MIB)  # now the consuming side holds bytes of its own
