"""What the engine demands of ``predict`` and ``prepare_item_func``: each broken promise named."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from adapter_base import AdapterContractError, Annotation, AnnotationCollection, BaseModelAdapter, Item, Model, ModelInfo, Registry, ValidationError
from adapter_base.prediction.contract import call_predict, check_results, prepare_input, stamp
from adapter_base.storage import LocalStore

MODEL = Model(name="shade", version=3)
ITEM = Item(dataset_id="d", path="a.png", mimetype="image/png")


@pytest.fixture
def registry(tmp_path):
    with Registry(LocalStore(tmp_path / "store"), io_workers=1) as reg:
        yield reg


class Echo(BaseModelAdapter):
    def __init__(self, registry: Registry, hang: threading.Event | None = None) -> None:
        super().__init__(registry=registry)
        self.hang = hang
        self.given: list[Item] = []

    def prepare_item_func(self, item):
        return None if item.path.endswith(".none") else item.path

    def predict(self, batch, **kwargs):
        if self.hang is not None:
            self.hang.wait(10)
        self.given = kwargs["items"]
        kwargs["items"][0].path = "renamed.png"
        return [[] for _ in batch]


def test_check_results_names_a_wrong_type_or_count():
    assert check_results([1, 2], 2) is None
    assert "predict returned a str, expected a list" in str(check_results("ab", 2))
    assert "predict returned a dict" in str(check_results({}, 2))
    assert "predict returned 1 results for a batch of 2" in str(check_results([1], 2))


def test_stamp_stamps_the_model_and_defaults_confidence_to_one():
    pset = stamp(MODEL, "run9", ITEM, AnnotationCollection([Annotation.classification("a"), Annotation.classification("b", confidence=np.float32(0.25))]))
    assert (pset.item_id, pset.model_id, pset.model_version, pset.run_id) == (ITEM.id, MODEL.id, 3, "run9")
    assert [(a.model.confidence, a.model.model_id, a.model.model_name) for a in pset.annotations] == [(1.0, MODEL.id, "shade"), (0.25, MODEL.id, "shade")]


def test_stamp_refuses_what_is_not_annotations():
    with pytest.raises(AdapterContractError, match="predict result is a str"):
        stamp(MODEL, "r", ITEM, "cat")
    with pytest.raises(AdapterContractError, match="result annotation 1 is a int"):
        stamp(MODEL, "r", ITEM, _collection_with(1))
    sure = Annotation.classification("a")
    sure.model = ModelInfo(confidence=1.5)  # as an adapter might set it after building the annotation
    with pytest.raises(ValidationError, match=r"prediction 0\.confidence: must be <= 1.0, got 1.5"):
        stamp(MODEL, "r", ITEM, [sure])


def _collection_with(bad: object) -> AnnotationCollection:
    coll = AnnotationCollection([Annotation.classification("a")])
    coll.annotations.append(bad)  # type: ignore[arg-type]
    return coll


def test_predict_gets_its_own_item_copies(registry):
    adapter = Echo(registry)
    call_predict(adapter, ["x"], [ITEM], None)
    assert adapter.given[0] is not ITEM and ITEM.path == "a.png"


def test_a_hung_predict_times_out_naming_the_setting(registry):
    release = threading.Event()
    with pytest.raises(TimeoutError, match="predict did not return within predict_timeout_s=0.2"):
        call_predict(Echo(registry, hang=release), ["x"], [ITEM], 0.2)
    release.set()


def test_prepare_item_func_may_not_return_none(registry):
    adapter = Echo(registry)
    assert prepare_input(adapter, ITEM) == "a.png"
    bad = Item(dataset_id="d", path="b.none", mimetype="image/png")
    with pytest.raises(AdapterContractError, match=f"prepare_item_func returned None for item {bad.id}"):
        prepare_input(adapter, bad)
