"""``promote``: point an alias (``production``) at the committed version; runs only behind the metric gate."""

from kfp.dsl import Input, Model


def promote(
    trained_model: Input[Model],
    alias: str,
    store_uri: str,
    run_id: str,
):
    """Set ``alias`` to the committed version (the pipeline's ``dsl.If`` checked evaluate's decision)."""
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.artifact_io import read_ref
    from adapter_base.steps.promote import promote as promote_step

    start_step()
    promote_step(read_ref(trained_model), alias, store_uri=store_uri, run_id=run_id)
