"""HTML report and markdown summary rendering."""

from __future__ import annotations

import base64
import re

import pytest

from adapter_base.metrics import (
    classification_metrics,
    detection_metrics,
    json_safe,
    render_html_report,
    render_markdown_summary,
)

EVIL = "<script>alert(1)</script>"
PNG_URI = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _images(page: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in PNG_URI.findall(page)}


@pytest.fixture(scope="module")
def classification() -> dict:
    # "zebra" is only predicted: its recall is NaN. "$x$" and "_hidden" stress matplotlib text.
    return classification_metrics(
        [EVIL, EVIL, "cat", "$x$", "_hidden"],
        [EVIL, "cat", "zebra", None, "_hidden"],
    )


@pytest.fixture(scope="module")
def detection() -> dict:
    box = (0, 0, 10, 10)
    return detection_metrics(
        [([(EVIL, box), ("_cat", box)], [(EVIL, box, 0.9), ("ghost", box, 0.5)])]
    )


def test_classification_report(classification: dict) -> None:
    page = render_html_report(
        classification,
        title="Eval <v2>",
        context={"model id": "resnet & co", "version": "3", "dataset": "val", "time": "2026-01-01T00:00Z"},
    )
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Eval &lt;v2&gt;</title>" in page
    assert "<dd>resnet &amp; co</dd>" in page and "2026-01-01T00:00Z" in page
    images = _images(page)
    assert list(images) == ["Confusion matrix"]
    assert images["Confusion matrix"].startswith(b"\x89PNG\r\n\x1a\n")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # zebra: predicted once, no support -> P 0, R NaN, F1 0, support 0
    assert '<td class="label">zebra</td><td>0.000</td><td>NaN</td><td>0.000</td><td>0</td>' in page
    assert "<th>&lt;none&gt;</th>" in page  # HTML confusion table has the no-prediction column
    assert "<td>0.400</td>" in page  # accuracy 2/5
    assert "src=\"http" not in page and "<link" not in page  # self-contained


def test_detection_report(detection: dict) -> None:
    page = render_html_report(detection, title="Detection")
    images = _images(page)
    assert list(images) == ["Precision-recall curves"]
    assert images["Precision-recall curves"].startswith(b"\x89PNG")
    assert "<script>" not in page and "&lt;script&gt;" in page
    # "ghost" has no ground truth: AP NaN in the per-label table
    assert '<td class="label">ghost</td><td>NaN</td><td>NaN</td><td>NaN</td><td>0</td><td>1</td>' in page
    assert "mAP@.50" in page


def test_report_accepts_json_safe_metrics(classification: dict, detection: dict) -> None:
    for metrics in (classification, detection):
        raw = render_html_report(metrics, title="t")
        encoded = render_html_report(json_safe(metrics), title="t")
        strip = lambda page: PNG_URI.sub("", page)  # noqa: E731 - PNG bytes may differ
        assert strip(raw) == strip(encoded)


def test_report_without_anything_to_plot() -> None:
    empty_cls = render_html_report(classification_metrics([], []), title="empty")
    assert "<img" not in empty_cls and "NaN" in empty_cls
    empty_det = render_html_report(detection_metrics([]), title="empty")
    assert "<img" not in empty_det and "no curve" in empty_det


def test_figures_are_not_left_open(classification: dict, detection: dict) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    render_html_report(classification, title="t")
    render_html_report(detection, title="t")
    assert plt.get_fignums() == before


def test_markdown_summary(classification: dict, detection: dict) -> None:
    md = render_markdown_summary(classification)
    assert md.startswith("| metric | value |\n| --- | --- |\n")
    assert "| accuracy | 0.400 |" in md
    assert "| zebra | 0.000 | NaN | 0.000 | 0 |" in md
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "| $x$ | NaN | 0.000 | 0.000 | 1 |" in md  # only pipes and backslashes are escaped
    piped = render_markdown_summary(classification_metrics(["a|b"], ["a|b"]))
    assert "| a\\|b | 1.000 |" in piped

    md = render_markdown_summary(detection)
    assert "| mAP@[.50:.95] | 0.500 |" in md  # (AP 1 for the script label + AP 0 for _cat) / 2
    assert "| ghost | NaN | NaN | NaN | 0 | 1 |" in md


def test_markdown_summary_truncates_labels() -> None:
    labels = [f"l{i:03d}" for i in range(60)]
    md = render_markdown_summary(classification_metrics(labels, labels), max_labels=50)
    assert "| l049 |" in md and "| l050 |" not in md
    assert "... and 10 more labels." in md
