"""evaluate_model on a box model: raw detector output (boxes past the image border) is clipped and counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from adapter_base import AnnotationCollection, BaseModelAdapter, Registry, ValidationError
from adapter_base.metrics.detection import METHOD
from adapter_base.storage import LocalStore
from support.images import png_bytes


class RawBoxAdapter(BaseModelAdapter):
    """Returns ``item.metadata["raw"]``: ``[[left, top, right, bottom, label, score], ...]`` as predicted."""

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.model = "raw"

    def save(self, local_path: str, **kwargs: Any) -> None:
        Path(local_path, "model.txt").write_text("raw")

    def predict(self, batch: list[Any], **kwargs: Any) -> list[AnnotationCollection]:
        out = []
        for item in kwargs["items"]:
            coll = AnnotationCollection()
            for left, top, right, bottom, label, score in item.metadata.get("raw", []):
                coll.add_box(left, top, right, bottom, label, confidence=score)
            out.append(coll)
        return out


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(LocalStore(tmp_path / "store"), io_workers=2)
    yield reg
    reg.close()


def _add(registry: Registry, ds: Any, name: str, truth: list[tuple[float, ...]], raw: list[list[Any]], **size: int) -> None:
    gt = AnnotationCollection()
    for box in truth:
        gt.add_box(*box, "car")
    registry.add_item(ds, name, png_bytes(1, size=(100, 80)), metadata={"raw": raw, **size}, annotations=gt)


def test_boxes_past_the_image_border_are_clipped_and_counted(registry: Registry) -> None:
    ds = registry.create_dataset("raw-boxes", labels=["car"])
    # With the image size recorded: (-4, -3, 30, 20) -> (0, 0, 30, 20) and (70, 50, 108, 91) -> (70, 50, 100, 80),
    # both then equal to their ground truth.
    _add(registry, ds, "a.png", [(0, 0, 30, 20), (70, 50, 100, 80)],
         [[-4, -3, 30, 20, "car", 0.9], [70, 50, 108, 91, "car", 0.8]], width=100, height=80)
    # Without it only the negative coordinate is clipped: (-2, 10, 40, 50) -> (0, 10, 40, 50).
    _add(registry, ds, "b.png", [(0, 10, 40, 50)], [[-2, 10, 40, 50, "car", 0.7]])
    # An image without ground truth: its detection is a false positive, ranked below every hit.
    _add(registry, ds, "c.png", [], [[5, 5, 15, 15, "car", 0.1]])
    model = registry.create_model("raw-det", labels=["car"], output_type="box")

    result = RawBoxAdapter(registry=registry).evaluate_model(model, ds)

    assert result.prediction.failed == 0  # raw boxes are accepted, not refused item by item
    m = result.metrics
    assert m["num_pred_clipped"] == 3 and m["num_images"] == 3 and m["max_detections"] == 100
    assert m["map"] == 1.0 and m["per_label"]["car"] == {"ap": 1.0, "ap50": 1.0, "ap75": 1.0, "num_gt": 3, "num_pred": 4}
    assert m["method"] == METHOD and "COCOeval" in METHOD and "area ranges" in METHOD
    stored = json.loads(registry.store.get_bytes(result.metrics_key))
    assert stored["num_pred_clipped"] == 3
    report = registry.store.get_bytes(result.report_key).decode()
    assert "predicted boxes clipped to the image" in report and "COCOeval" in report


def test_a_bad_recorded_image_size_names_the_item(registry: Registry) -> None:
    ds = registry.create_dataset("bad-size", labels=["car"])
    _add(registry, ds, "a.png", [(0, 0, 10, 10)], [[0, 0, 10, 10, "car", 0.9]], width=100)
    item = next(registry.iter_items(ds))
    model = registry.create_model("raw-det", labels=["car"], output_type="box")
    with pytest.raises(ValidationError, match=f"item {item.id}: width and height must be positive numbers"):
        RawBoxAdapter(registry=registry).evaluate_model(model, ds)
