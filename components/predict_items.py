"""``predict_items``: predict one shard's items with the user's adapter (streaming batches)."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output


def predict_items(
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
    import json

    from adapter_base.pipeline_steps import configure_step_logging, finite_numbers, predict_shard_step, write_json

    configure_step_logging()
    with open(base_model.path) as f:
        ref = json.load(f)
    with open(shards.path) as f:
        index = json.load(f)
    out = predict_shard_step(
        adapter, ref, index, shard, store_uri=store_uri, configuration=configuration,
        batch_size=batch_size, resume=resume,
    )
    write_json(report.path, out)
    report.metadata.update({k: out[k] for k in ("shard", "attempt", "run_id", "total", "failed")})
    keys = ("total", "succeeded", "skipped", "failed", "duration_s", "items_per_second", "attempt")
    for key, value in finite_numbers({k: out[k] for k in keys}).items():
        metrics.log_metric(key, value)
