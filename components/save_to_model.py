"""``save_to_model``: commit the staged training result as the model's next version."""

from kfp.dsl import Input, Model, Output


def save_to_model(
    staged_model: Input[Model],
    store_uri: str,
    trained_model: Output[Model],
):
    """Make the staged files the next version (status ``trained``); output the new version's reference."""
    import json

    from adapter_base.pipeline_steps import configure_step_logging, save_step, write_json

    configure_step_logging()
    with open(staged_model.path) as f:
        staged = json.load(f)
    ref = save_step(staged, store_uri=store_uri)
    write_json(trained_model.path, ref)
    trained_model.metadata.update(ref)
