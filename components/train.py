"""``train``: train from the loaded version and stage the result (no new version yet)."""

from kfp.dsl import Input, Metrics, Model, Output


def train(
    adapter: str,
    base_model: Input[Model],
    dataset: str,
    store_uri: str,
    configuration: dict,
    run_id: str,
    staged_model: Output[Model],
    training_metrics: Output[Metrics],
):
    """Train on the model's train/validation subsets and stage the trained files under the run id.

    ``commit`` turns them into the next version. Output: a reference to the staged result
    and the last epoch's training metrics.
    """
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.artifact_io import log_metrics, read_ref, write_ref
    from adapter_base.steps.train import train as train_step

    start_step()
    staged = train_step(adapter, read_ref(base_model), run_id, dataset=dataset, store_uri=store_uri, configuration=configuration)
    write_ref(staged_model, staged.ref)
    log_metrics(training_metrics, staged.training)
