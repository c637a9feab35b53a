"""``evaluate``: evaluate the committed version on a test subset; metrics, confusion matrix, report, promotion decision."""

from kfp.dsl import HTML, ClassificationMetrics, Input, Markdown, Metrics, Model, Output


def evaluate(
    adapter: str,
    trained_model: Input[Model],
    dataset: str,
    filters: dict,
    metric: str,
    threshold: float,
    store_uri: str,
    configuration: dict,
    batch_size: int,
    run_id: str,
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
    report: Output[HTML],
    summary: Output[Markdown],
) -> bool:
    """Run ``adapter.evaluate_model`` on the items matching ``filters``; returns whether to promote (``metric >= threshold``).

    Never for a non-finite metric. A bool, not the metric: a float output could be a bare
    ``NaN``, which the backend's Go launcher cannot parse. The reason in words (value and
    comparison) is in the summary artifact and the model's ``metrics["promotion"]``. The
    metrics and the HTML report are stored in the registry too (the model's evaluations);
    the artifacts here are what the KFP UI shows.
    """
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.artifact_io import log_metrics, read_ref
    from adapter_base.steps.evaluate import evaluate as evaluate_step
    from adapter_base.steps.evaluate import square_confusion

    start_step()
    ref = read_ref(trained_model)
    out = evaluate_step(
        adapter, ref, run_id, dataset=dataset, filters=filters, metric=metric, threshold=threshold,
        store_uri=store_uri, configuration=configuration, batch_size=batch_size,
    )
    log_metrics(metrics, out.scalars)
    confusion = out.result.metrics.get("confusion_matrix")
    if confusion:
        confusion_matrix.log_confusion_matrix(*square_confusion(confusion))
    with open(report.path, "w") as f:
        f.write(out.result.report_html)
    report.metadata.update({"report_uri": out.result.report_uri, "metrics_key": out.result.metrics_key, "version": ref.version})
    with open(summary.path, "w") as f:
        f.write(f"## {ref.model_name} v{ref.version}: {out.reason}\n\n{out.result.report_markdown}")
    return out.promote
