"""What a finished pipeline run left, read back from the store (every backend's local run reports it)."""

from __future__ import annotations

from typing import Any, Mapping


def model_state(store_uri: str, model: str) -> dict[str, Any]:
    """The model's version, status, aliases and latest evaluation, from the store."""
    from adapter_base.registry import Registry

    with Registry.open(store_uri or None) as registry:
        m = registry.get_model(model)
        evaluation = m.metrics.get("evaluation")
        if evaluation and evaluation.get("report"):
            evaluation = {**evaluation, "report_uri": registry.store.uri_of(str(evaluation["report"]))}
        return {
            "model_id": m.id,
            "model_name": m.name,
            "version": m.version,
            "status": m.status,
            "status_message": m.status_message,
            "aliases": dict(m.aliases),
            "evaluation": evaluation,
            "evaluation_failures": _evaluation_failures(registry, m, evaluation),
            "promotion": m.metrics.get("promotion"),
        }


def _evaluation_failures(registry: Any, model: Any, evaluation: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The failed items of the prediction run behind the model's latest evaluation of its current version."""
    from adapter_base.registry import layout

    report = str((evaluation or {}).get("report") or "")
    if not report.endswith("/" + layout.EVALUATION_REPORT_HTML) or (evaluation or {}).get("version") != model.version:
        return []
    metrics = registry.store.get_json(layout.evaluation_file(report[: -len(layout.EVALUATION_REPORT_HTML)], layout.EVALUATION_METRICS))
    if not metrics.get("items_failed") or not metrics.get("prediction_run_id"):
        return []
    return list(registry.get_run_report(str(metrics["prediction_run_id"])).get("failures") or [])
