"""``FailFast``: a run stops when its first batches all fail with the same error, and only then."""

from __future__ import annotations

import pytest

from adapter_base.errors import ValidationError
from adapter_base.prediction import PredictionOptions
from adapter_base.prediction.failfast import FailFast


def test_trips_after_the_first_batches_fail_alike():
    ff = FailFast(3)
    assert [ff.record("E: x") for _ in range(3)] == [False, False, True]
    assert "the first 3 predict batches all failed with the same error (E: x)" in ff.reason()


@pytest.mark.parametrize("outcomes", [["E: x", None, "E: x", "E: x"], ["E: x", "E: y", "E: y", "E: y"]])
def test_a_batch_that_succeeds_or_differs_disarms_it(outcomes):
    ff = FailFast(2)
    assert not any(ff.record(o) for o in outcomes + ["E: y"] * 5)


def test_none_never_trips_and_the_configuration_can_turn_it_off():
    ff = FailFast(None)
    assert not any(ff.record("E: x") for _ in range(10))
    assert PredictionOptions.from_configuration({}).fail_fast_batches == 3
    assert PredictionOptions.from_configuration({"fail_fast_batches": 0}).fail_fast_batches is None
    assert PredictionOptions.from_configuration({"fail_fast_batches": 5}).fail_fast_batches == 5
    with pytest.raises(ValidationError, match="fail_fast_batches"):
        PredictionOptions.from_configuration({"fail_fast_batches": "many"})
