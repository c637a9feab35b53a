"""Evaluation metrics for model adapters.

Pure functions that turn predictions and ground truth into JSON-ready metric dicts
(classification equal to scikit-learn, detection equal to pycocotools COCOeval), helpers
to encode them as strict JSON, and renderers for an HTML report and a markdown summary.
"""

from adapter_base.metrics.classification import NO_PREDICTION, classification_metrics
from adapter_base.metrics.detection import (
    IOU_THRESHOLDS,
    RECALL_POINTS,
    GroundTruthBox,
    PredictedBox,
    detection_metrics,
    iou_matrix,
)
from adapter_base.metrics.finite import format_metric, from_json_safe, json_safe
from adapter_base.metrics.report import render_html_report, render_markdown_summary
from adapter_base.metrics.selection import finite_numbers, headline, metric_value, scalar_metrics

__all__ = [
    "IOU_THRESHOLDS",
    "NO_PREDICTION",
    "RECALL_POINTS",
    "GroundTruthBox",
    "PredictedBox",
    "classification_metrics",
    "detection_metrics",
    "finite_numbers",
    "format_metric",
    "from_json_safe",
    "headline",
    "iou_matrix",
    "json_safe",
    "metric_value",
    "render_html_report",
    "render_markdown_summary",
    "scalar_metrics",
]
