"""``record_status``: the exit step; marks the model ``failed`` when the run did not succeed."""

from kfp import dsl


def record_status(
    model: str,
    store_uri: str,
    run_id: str,
    status: dsl.PipelineTaskFinalStatus,
):
    """Runs after everything else (``dsl.ExitHandler``), even when a step failed or the run was cancelled."""
    import logging

    from adapter_base.pipeline_steps import finalize_step

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(finalize_step(model, run_id, status.state, status.error_message, store_uri=store_uri))
