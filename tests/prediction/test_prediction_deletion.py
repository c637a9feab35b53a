"""``DeletionWatch``: a model deleted under a run is noticed at the next check, and only the sets
stored after the last check that found it are taken back."""

from __future__ import annotations

import pytest

from adapter_base import Annotation, NotFoundError, Registry
from adapter_base.prediction.contract import stamp
from adapter_base.prediction.deletion import DeletionWatch
from adapter_base.registry import layout
from adapter_base.storage import LocalStore


def test_sets_stored_after_the_last_check_that_found_the_model_are_taken_back(tmp_path):
    with Registry(LocalStore(tmp_path / "store"), io_workers=2) as registry:
        ds = registry.create_dataset("d", labels=["a"])
        model = registry.create_model("m")
        items = [registry.add_item(ds, f"{i}.txt", b"x") for i in range(4)]
        for item in items:
            registry.put_predictions(stamp(model, "run", item, [Annotation.classification("a", confidence=0.5)]), ds.id)
        watch = DeletionWatch(registry.store, model, "run", ds.id, interval_s=3600)

        watch.stored(items[:2], [None, None])
        watch.check()  # within the interval: no request, nothing decided
        watch.check(now=True)  # the model is there: items 0 and 1 are its sets for good
        watch.stored(items[2:], [None, OSError("not stored")])
        registry.store.delete(layout.model_record(model.id))  # deleted under the run (its sets not swept yet)
        with pytest.raises(NotFoundError, match=r"model 'm' .* was deleted while run run predicted"):
            watch.check(now=True)
        assert watch.deleted
        watch.take_back()
        assert [registry.store.exists(layout.predictions(ds.id, it.id, model.id, model.version)) for it in items] == [True, True, False, True]


def test_a_watch_of_a_model_that_exists_takes_nothing_back(tmp_path):
    with Registry(LocalStore(tmp_path / "store"), io_workers=2) as registry:
        ds = registry.create_dataset("d", labels=["a"])
        model = registry.create_model("m")
        item = registry.add_item(ds, "0.txt", b"x")
        registry.put_predictions(stamp(model, "run", item, [Annotation.classification("a", confidence=0.5)]), ds.id)
        watch = DeletionWatch(registry.store, model, "run", ds.id, interval_s=0)
        watch.stored([item], [None])
        watch.check()
        watch.take_back()
        assert registry.get_predictions(item, model.id) is not None
