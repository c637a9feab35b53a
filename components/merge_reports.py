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
    from adapter_base.sharding import summary_markdown as render
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.artifact_io import log_metrics, read_json, write_output
    from adapter_base.steps.merge_reports import merge_reports as merge_step

    start_step()
    merged = merge_step([read_json(r) for r in reports], read_json(shards)["run_id"], store_uri=store_uri)
    write_output(summary, merged, metadata=("run_id", "shards", "total", "succeeded", "failed", "summary_key"))
    log_metrics(metrics, merged, keys=("shards", "total", "succeeded", "skipped", "failed", "duration_s", "shard_seconds", "items_per_second"))
    with open(summary_markdown.path, "w") as f:
        f.write(render(merged))
    # One line: each failed item is listed once, in its shard's log and in the summary markdown.
    print(
        f"prediction run {merged['run_id']}: {merged['succeeded']} predicted, {merged['skipped']} already done, "
        f"{merged['failed']} failed of {merged['total']} in {merged['shards']} shard(s)"
    )
