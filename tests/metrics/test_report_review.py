"""The evaluation report leads with what people look at first: the worst mistakes with
thumbnails, and the comparison with the previous version and the ``production`` alias.
Ids stay out of the metrics table; filters read as text."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image

from adapter_base import AnnotationCollection, BaseModelAdapter, Registry
from adapter_base.metrics import classification_metrics, render_html_report
from adapter_base.metrics.mistakes import (
    BOX_THUMBNAIL_SIDE,
    MAX_MISTAKES,
    PREDICTED_COLOUR,
    THUMBNAIL_SIDE,
    TRUE_COLOUR,
    WorstMistakes,
    classification_mistake,
    detection_mistake,
    thumbnail_png,
)
from adapter_base.metrics.report import Baseline, filters_text

IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


class ByVersion(BaseModelAdapter):
    """Predicts ``item.metadata["v<version>"]`` with confidence ``item.metadata["conf"]``; boxes from ``boxes``."""

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.model = "metadata"

    def save(self, local_path: str, **kwargs: Any) -> None:
        Path(local_path, "model.txt").write_text("metadata")

    def predict(self, batch: Any, **kwargs: Any) -> list[AnnotationCollection]:
        version = self.model_entity.version
        out = []
        for item in kwargs["items"]:
            coll = AnnotationCollection()
            if "boxes" in item.metadata:
                for label, box, conf in item.metadata["boxes"]:
                    coll.add_box(*box, label, confidence=conf)
            else:
                coll.add_classification(item.metadata[f"v{version}"], confidence=item.metadata["conf"])
            out.append(coll)
        return out


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _decode(data_b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data_b64))).convert("RGB")


def _section(page: str, heading: str) -> str:
    """The HTML between ``<h2>heading</h2>`` and the next ``<h2>``."""
    rest = page.split(f"<h2>{heading}</h2>", 1)[1]
    return rest.split("<h2>", 1)[0]


def _header(table_html: str) -> list[str]:
    return re.findall(r"<th(?: [^>]*)?>(.*?)</th>", table_html.split("</thead>", 1)[0])


def _rows(table_html: str) -> dict[str, list[str]]:
    """First cell -> the other cells, of every body row."""
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table_html.split("<tbody>", 1)[1]):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
        out[cells[0]] = cells[1:]
    return out


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry.open(str(tmp_path / "store")) as registry:
        yield registry


def _classification_dataset(registry: Registry):
    """10 test items: v1 gets 6 right, v2 gets 8 right; items 0-3 are wrong for v1 with confidences 0.1..0.9."""
    ds = registry.create_dataset("pets", labels=["cat", "dog"])
    confs = [0.9, 0.3, 0.6, 0.1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    for i in range(10):
        truth = "cat" if i % 2 == 0 else "dog"
        other = "dog" if truth == "cat" else "cat"
        gt = AnnotationCollection()
        gt.add_classification(truth)
        registry.add_item(
            ds, f"test/{i:02d}.png", _png((25 * i, 100, 200 - 20 * i)), subsets=["test"],
            metadata={"v1": other if i < 4 else truth, "v2": other if i < 2 else truth, "conf": confs[i]}, annotations=gt,
        )
    return ds


def _new_version(registry: Registry, model) -> Any:
    adapter = ByVersion(registry=registry)
    adapter.load_from_model(registry.get_model(model.id))
    return adapter.save_to_model()


def test_classification_report_shows_worst_mistakes_and_the_comparison(registry: Registry) -> None:
    ds = _classification_dataset(registry)
    model = registry.create_model("pet-model", labels=["cat", "dog"], adapter="x:y")
    v1 = _new_version(registry, model)
    first = ByVersion(registry=registry).evaluate_model(v1, ds, filters={"subset": "test"})
    assert first.metrics["accuracy"] == pytest.approx(0.6)
    # Nothing to compare with yet: one value column.
    assert _header(_section(first.report_html, "Summary")) == ["metric", "value"]
    registry.set_alias(v1, "production", 1)

    v2 = _new_version(registry, v1)
    result = ByVersion(registry=registry).evaluate_model(v2, ds, filters={"subset": "test"})
    page = result.report_html
    assert page == registry.store.get_bytes(result.report_key).decode()

    # What people look at first comes first: the summary, then the worst mistakes.
    assert page.index("<h2>Summary</h2>") < page.index("<h2>Worst mistakes</h2>") < page.index("<h2>Per label</h2>")

    # The comparison: v1 is both the previous version and production, one column with deltas.
    summary = _section(page, "Summary")
    assert _header(summary) == ["metric", "v2 (this)", "v1 (previous, production)", "&Delta;"]
    rows = _rows(summary)
    assert rows["accuracy"] == ["0.800", "0.600", "+0.200"]
    assert rows["samples"] == ["10", "10", "+0"]

    # No ids in the metrics table (they are context), filters as text.
    for raw in (model.id, ds.id, result.prediction.run_id):
        assert raw not in summary
    assert not {"model_id", "dataset_id", "prediction_run_id", "filters subset", "model_version"} & set(rows)
    assert "<dt>filters</dt><dd>subset=test</dd>" in page
    assert "{&#x27;subset&#x27;" not in page and "{'subset'" not in page
    assert "<dt>ids</dt>" in page and model.id in page  # the ids are still findable, under the title

    # The worst mistakes: v2's two wrong labels, most confident first, each with a thumbnail.
    mistakes = _section(page, "Worst mistakes")
    assert "2 of 2 wrong labels" in mistakes
    shown = IMG.findall(mistakes)
    assert [alt for alt, _ in shown] == ["test/00.png", "test/01.png"]  # confidence 0.9, then 0.3
    assert "true cat" in mistakes and "predicted dog (0.90)" in mistakes
    thumb = _decode(shown[0][1])
    assert thumb.size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)  # an 8x8 image, enlarged to be seen
    assert thumb.getpixel((64, 64)) == (0, 100, 200)  # item 0's colour, pixels kept sharp


def test_production_on_another_version_gets_its_own_column(registry: Registry) -> None:
    ds = _classification_dataset(registry)
    model = registry.create_model("pet-model", labels=["cat", "dog"], adapter="x:y")
    v1 = _new_version(registry, model)
    ByVersion(registry=registry).evaluate_model(v1, ds, filters={"subset": "test"})
    registry.set_alias(v1, "production", 1)
    v2 = _new_version(registry, v1)
    ByVersion(registry=registry).evaluate_model(v2, ds, filters={"subset": "test"})
    v3 = _new_version(registry, v2)
    # v3 predicts what metadata "v3" says: absent, so give every item v2's answer via a third key.
    for item in registry.iter_items(ds):
        item.metadata["v3"] = item.metadata["v2"]
        registry.update_item(item)
    page = ByVersion(registry=registry).evaluate_model(v3, ds, filters={"subset": "test"}).report_html
    summary = _section(page, "Summary")
    assert _header(summary) == ["metric", "v3 (this)", "v2 (previous)", "&Delta;", "v1 (production)", "&Delta;"]
    assert _rows(summary)["accuracy"] == ["0.800", "0.800", "+0.000", "0.600", "+0.200"]


def test_a_baseline_on_other_data_is_named_not_compared(registry: Registry) -> None:
    ds = _classification_dataset(registry)
    model = registry.create_model("pet-model", labels=["cat", "dog"], adapter="x:y")
    v1 = _new_version(registry, model)
    ByVersion(registry=registry).evaluate_model(v1, ds, filters={"subset": "test", "path_prefix": "test"})
    v2 = _new_version(registry, v1)
    page = ByVersion(registry=registry).evaluate_model(v2, ds, filters={"subset": "test"}).report_html
    assert _header(_section(page, "Summary")) == ["metric", "value"]
    assert "v1 (previous) was last evaluated on other data (pets, subset=test, path_prefix=test): not compared" in page


def test_detection_report_draws_true_and_predicted_boxes(registry: Registry) -> None:
    ds = registry.create_dataset("shapes", labels=["square"])
    boxes = {
        "test/good.png": ([("square", (10, 10, 30, 30))], [("square", (10, 10, 30, 30), 0.9)]),
        "test/missed.png": ([("square", (5, 5, 25, 25))], []),
        "test/false.png": ([("square", (40, 40, 60, 60))], [("square", (40, 40, 60, 60), 0.8), ("square", (0, 0, 20, 20), 0.7)]),
        "test/shifted.png": ([("square", (10, 10, 30, 30))], [("square", (30, 30, 50, 50), 0.95)]),
    }
    for path, (truth, pred) in boxes.items():
        gt = AnnotationCollection()
        for label, box in truth:
            gt.add_box(*box, label)
        registry.add_item(ds, path, _png((255, 255, 255), (64, 64)), subsets=["test"],
                          metadata={"boxes": [[label, list(box), conf] for label, box, conf in pred], "width": 64, "height": 64},
                          annotations=gt)
    model = registry.create_model("boxes", labels=["square"], output_type="box", adapter="x:y")
    v1 = _new_version(registry, model)
    result = ByVersion(registry=registry).evaluate_model(v1, ds, filters={"subset": "test"})
    page = result.report_html

    mistakes = _section(page, "Worst mistakes")
    assert "3 of 3 images with missed or false boxes" in mistakes and "true boxes green, predicted red" in mistakes
    shown = IMG.findall(mistakes)
    # shifted: 1 missed + a false one at 0.95; missed: 1 missed; false: a false one at 0.7. The good image is not shown.
    assert [alt for alt, _ in shown] == ["test/shifted.png", "test/missed.png", "test/false.png"]
    assert "1 missed, 1 false (top 0.95)" in mistakes
    thumb = np.asarray(_decode(shown[0][1]))
    assert thumb.shape == (BOX_THUMBNAIL_SIDE, BOX_THUMBNAIL_SIDE, 3)
    scale = BOX_THUMBNAIL_SIDE / 64
    # The true box's left edge is green, the predicted box's right edge red, the inside of neither white.
    assert tuple(thumb[int(20 * scale), int(10 * scale)]) == TRUE_COLOUR
    assert tuple(thumb[int(40 * scale), int(50 * scale) - 1]) == PREDICTED_COLOUR
    assert tuple(thumb[int(20 * scale), int(20 * scale)]) == (255, 255, 255)
    # The mAP summary has no ids either; the method is a note under the table, not a row.
    summary = _section(page, "Summary")
    assert "mAP@.50" in _rows(summary) and model.id not in summary and ds.id not in summary
    assert "method" not in _rows(summary) and '<p class="note">method: pycocotools COCOeval' in summary


def test_text_items_show_an_excerpt(registry: Registry) -> None:
    ds = registry.create_dataset("notes", labels=["spam", "ham"])
    for i, text in enumerate(["WIN A PRIZE <now>", "see you at 5"]):
        gt = AnnotationCollection()
        gt.add_classification("spam" if i == 0 else "ham")
        registry.add_item(ds, f"test/{i}.txt", text.encode(), subsets=["test"], metadata={"v1": "ham", "conf": 0.7}, annotations=gt)
    model = registry.create_model("spam-model", labels=["spam", "ham"], adapter="x:y")
    page = ByVersion(registry=registry).evaluate_model(_new_version(registry, model), ds, filters={"subset": "test"}).report_html
    mistakes = _section(page, "Worst mistakes")
    assert "<pre>WIN A PRIZE &lt;now&gt;</pre>" in mistakes and "see you at 5" not in mistakes


def test_the_mistakes_shown_are_bounded_in_count_and_size() -> None:
    worst = WorstMistakes()
    rng = np.random.default_rng(0)
    confs = rng.random(5000)
    for i, conf in enumerate(confs):
        worst.add(classification_mistake(f"id{i}", f"p/{i}.png", "a", "b", float(conf)))
        worst.add(classification_mistake(f"ok{i}", f"q/{i}.png", "a", "a", 1.0))  # right: not a mistake
    kept = worst.worst()
    assert worst.total == 5000 and len(kept) == MAX_MISTAKES
    assert [m.score for m in kept] == sorted(confs, reverse=True)[:MAX_MISTAKES]
    # A big photo becomes a small thumbnail.
    big = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)).save(big, format="JPEG")
    thumb = _decode(thumbnail_png(big.getvalue()).split(",", 1)[1])
    assert max(thumb.size) == THUMBNAIL_SIDE and thumb.size == (128, 96)
    with pytest.raises(ValueError, match="not a readable image"):
        thumbnail_png(b"not an image")


def test_detection_mistakes_match_greedily_by_confidence_at_iou_half() -> None:
    truth = [("a", (0, 0, 10, 10)), ("a", (20, 0, 30, 10))]
    # The 0.9 box overlaps both true boxes' region only with the first (IoU 1); the 0.8 one duplicates it.
    pred = [("a", (0, 0, 10, 10), 0.8), ("a", (0, 0, 10, 10), 0.9), ("a", (20, 0, 30, 10), 0.4), ("b", (20, 0, 30, 10), 0.6)]
    m = detection_mistake("i", "p.png", truth, pred)
    assert m is not None and m.predicted == "2 false (top 0.80)" and m.score == pytest.approx(0.8 + 0.6)
    assert detection_mistake("i", "p.png", truth, pred[1:3]) is None
    missed = detection_mistake("i", "p.png", truth, [])
    assert missed is not None and missed.predicted == "2 missed" and missed.score == 2


def test_report_filters_and_baselines_render_without_the_flow() -> None:
    metrics = classification_metrics(["a", "b", "a"], ["a", "a", "a"])
    metrics.update(model_id="m-123", dataset_id="d-456", filters={"subset": "test"}, prediction_run_id="r-789")
    older = classification_metrics(["a", "b", "a"], ["b", "a", "a"])
    page = render_html_report(metrics, title="t", baselines=[Baseline("v1 (previous)", older)])
    summary = _section(page, "Summary")
    assert not re.search(r"m-123|d-456|r-789|subset", summary)
    assert _rows(summary)["accuracy"] == ["0.667", "0.333", "+0.333"]
    assert filters_text({"subset": "test", "path_prefix": None, "metadata": {"camera": "a"}, "item_ids": ["x", "y"]}) == (
        "subset=test, metadata.camera=a, 2 chosen items"
    )
    assert filters_text({}) == filters_text(None) == "all items"
