"""``promote``: point an alias (``production``) at the saved version; runs only behind the metric gate."""

from kfp.dsl import Input, Model


def promote(
    trained_model: Input[Model],
    alias: str,
    store_uri: str,
    run_id: str,
):
    """Set ``alias`` to the trained version (the pipeline's ``dsl.If`` checked evaluate's decision)."""
    import json

    from adapter_base.pipeline_steps import configure_step_logging, promote_step

    configure_step_logging()
    with open(trained_model.path) as f:
        ref = json.load(f)
    promote_step(ref, alias, store_uri=store_uri, run_id=run_id)
