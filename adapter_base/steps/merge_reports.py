"""``merge_reports``: combine the shard reports into one summary (items done, failed with reasons, throughput)."""

from __future__ import annotations

from typing import Any, Mapping

from .. import sharding
from ..registry import Registry, layout


def merge_reports(reports: list[Mapping[str, Any]], run_id: str, *, store_uri: str = "") -> dict[str, Any]:
    """The merged summary of ``reports``, also written to ``runs/<run_id>/prediction-summary.json``."""
    summary = sharding.merge_reports(reports, run_id=run_id)
    with Registry.open(store_uri or None) as registry:
        summary["summary_key"] = layout.prediction_summary(run_id)
        summary["store_uri"] = registry.store.uri
        registry.store.put_json(summary["summary_key"], summary)
    return summary
