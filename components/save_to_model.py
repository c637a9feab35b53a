"""``save_to_model``: commit the staged training result as the model's next version."""

from kfp.dsl import Input, Model, Output


def save_to_model(
    staged_model: Input[Model],
    store_uri: str,
    trained_model: Output[Model],
):
    """Make the staged files the next version (status ``trained``); output the new version's reference."""
    import json
    import logging

    from adapter_base.pipeline_steps import save_step

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with open(staged_model.path) as f:
        staged = json.load(f)
    ref = save_step(staged, store_uri=store_uri)
    with open(trained_model.path, "w") as f:
        json.dump(ref, f, indent=1)
    trained_model.metadata.update(ref)
