"""``PredictionReport`` and ``Tally``: counts from many threads add up; a run with unaccounted items is marked failed."""

from __future__ import annotations

import threading

from adapter_base import Item, PredictionReport
from adapter_base.prediction.report import Tally


def report() -> PredictionReport:
    return PredictionReport(run_id="r1", model_id="m1", model_name="shade", model_version=2, batch_size=4)


def test_tally_from_many_threads_adds_up():
    r = report()
    tally = Tally(r)
    items = [Item(dataset_id="d", path=f"{i}.png", mimetype="image/png") for i in range(400)]

    def work(part: list[Item]) -> None:
        for it in part:
            tally.listed()
        tally.written(part[:-2], [None] * (len(part) - 2))
        tally.written(part[-2:-1], [OSError("disk full")])
        tally.skipped()

    threads = [threading.Thread(target=work, args=(items[i : i + 40],)) for i in range(0, 400, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (r.total, r.succeeded, r.failed, r.skipped) == (400, 380, 10, 10)
    assert {f.stage for f in r.failures} == {"write"} and r.failures[0].error == "OSError: disk full"
    r.check_accounted()
    assert r.fatal_error is None and not r.ok


def test_items_without_an_outcome_fail_the_run():
    r = report()
    tally = Tally(r)
    for _ in range(3):
        tally.listed()
    tally.failed("i1", "prepare", "too big", "a.png")
    r.check_accounted()
    assert r.fatal_error == "2 of 3 items have no outcome"


def test_summary_and_dict_name_each_failure():
    r = report()
    Tally(r).failed("i9", "predict", ValueError("bad"), "x/9.png")
    r.duration_s = 2.0
    r.succeeded = 4
    lines = r.summary().splitlines()
    assert lines[0].startswith("prediction run r1: model shade v2: 4 predicted, 0 already done, 1 failed")
    assert lines[1] == "  FAILED i9 (x/9.png) at predict: ValueError: bad"
    d = r.to_dict()
    assert d["failed"] == 1 and d["items_per_second"] == 2.0 and d["failures"][0]["stage"] == "predict"


def test_identical_failures_are_one_line_naming_the_first_item():
    r = report()
    tally = Tally(r)
    for i in range(118):
        tally.failed(f"i{i}", "predict", AttributeError("no forward"), f"test/dark/{i}.png")
    tally.failed("j", "prepare", "too big", "b.png")
    lines = r.summary().splitlines()[1:]
    assert lines == ["  FAILED 118 items at predict: AttributeError: no forward (first: test/dark/0.png)", "  FAILED j (b.png) at prepare: too big"]
    assert r.failed == 119 and len(r.to_dict()["failures"]) == 119, "the stored report keeps every item"
