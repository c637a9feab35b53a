"""``train_model``: train from the loaded version and stage the result (no new version yet)."""

from kfp.dsl import Input, Metrics, Model, Output


def train_model(
    adapter: str,
    base_model: Input[Model],
    dataset: str,
    store_uri: str,
    configuration: dict,
    run_id: str,
    staged_model: Output[Model],
    training_metrics: Output[Metrics],
):
    """Run ``adapter.train_model(model, save=False, run_id=run_id)`` on the model's train/validation subsets.

    The trained files are staged in the store under the run id; ``save_to_model``
    turns them into the next version. Output: a reference to the staged result and
    the last epoch's training metrics.
    """
    import json

    from adapter_base.pipeline_steps import configure_step_logging, finite_numbers, train_step, write_json

    configure_step_logging()
    with open(base_model.path) as f:
        ref = json.load(f)
    staged = train_step(adapter, ref, run_id, dataset=dataset, store_uri=store_uri, configuration=configuration)
    write_json(staged_model.path, staged)
    staged_model.metadata.update({k: v for k, v in staged.items() if k != "training"})
    for key, value in finite_numbers(staged.get("training") or {}).items():
        training_metrics.log_metric(key, value)
