"""``merge_reports``: combine the shard reports into one summary (done, failed with reasons, throughput)."""

from typing import List

from kfp.dsl import Dataset, Input, Markdown, Metrics, Output


def merge_reports(
    reports: Input[List[Dataset]],
    shards: Input[Dataset],
    store_uri: str,
    summary: Output[Dataset],
    metrics: Output[Metrics],
    summary_markdown: Output[Markdown],
):
    """Merge every shard's report; writes ``runs/<run_id>/prediction-summary.json`` to the store too."""
    import json

    from adapter_base.pipeline_steps import configure_step_logging, finite_numbers, merge_step, write_json
    from adapter_base.sharding import summary_markdown as render

    configure_step_logging()
    with open(shards.path) as f:
        index = json.load(f)
    loaded = []
    for artifact in reports:
        with open(artifact.path) as f:
            loaded.append(json.load(f))
    merged = merge_step(loaded, index["run_id"], store_uri=store_uri)
    write_json(summary.path, merged)
    summary.metadata.update({k: merged[k] for k in ("run_id", "shards", "total", "succeeded", "failed", "summary_key")})
    keys = ("shards", "total", "succeeded", "skipped", "failed", "duration_s", "shard_seconds", "items_per_second")
    for key, value in finite_numbers({k: merged[k] for k in keys}).items():
        metrics.log_metric(key, value)
    with open(summary_markdown.path, "w") as f:
        f.write(render(merged))
    print(render(merged))
