"""``commit``: make the staged training result the model's next version."""

from kfp.dsl import Input, Model, Output


def commit(
    staged_model: Input[Model],
    store_uri: str,
    trained_model: Output[Model],
):
    """Make the staged files the next version (status ``trained``); output the new version's reference."""
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.artifact_io import read_ref, write_ref
    from adapter_base.steps.commit import commit as commit_step

    start_step()
    write_ref(trained_model, commit_step(read_ref(staged_model), store_uri=store_uri))
