"""``finalize``: the train pipeline's exit step; marks the model ``failed`` when the run did not succeed."""

from kfp import dsl


def finalize(
    model: str,
    store_uri: str,
    run_id: str,
    status: dsl.PipelineTaskFinalStatus,
):
    """Runs after everything else (``dsl.ExitHandler``), even when a step failed or the run was cancelled.

    ``status.state`` is what the runner says about the wrapped steps: ``COMPLETE`` /
    ``FAILED`` / ``CANCELED`` (the KFP backend; ``RUNNING`` where it did not propagate the
    state), ``SUCCEEDED`` / ``FAILED`` (kfp.local). The step decides from it, or from the
    run's journal in the store when it says neither.
    """
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.finalize import finalize as finalize_step

    start_step()
    print(finalize_step(model, run_id, status.state, status.error_message, store_uri=store_uri))
