"""``predict_shard``: predict one shard's items with the user's adapter (streaming batches)."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output


def predict_shard(
    adapter: str,
    base_model: Input[Model],
    shards: Input[Dataset],
    shard: int,
    store_uri: str,
    configuration: dict,
    batch_size: int,
    resume: bool,
    report: Output[Dataset],
    metrics: Output[Metrics],
):
    """Predict the items of shard ``shard`` (the streaming engine of ``adapter.predict_items``); output its report.

    A failing item is recorded in the report (item id, stage, error) and the shard
    goes on; the step fails (and is retried) only if the model or the listing cannot
    be loaded.
    """
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.artifact_io import log_metrics, read_json, read_ref, write_output
    from adapter_base.steps.predict_shard import predict_shard as predict_step

    start_step()
    out = predict_step(
        adapter, read_ref(base_model), read_json(shards), shard, store_uri=store_uri, configuration=configuration,
        batch_size=batch_size, resume=resume,
    )
    write_output(report, out, metadata=("shard", "attempt", "run_id", "total", "failed"))
    log_metrics(metrics, out, keys=("total", "succeeded", "skipped", "failed", "duration_s", "items_per_second", "attempt"))
