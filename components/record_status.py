"""``record_status``: the exit step; marks the model ``failed`` when the run did not succeed."""

from kfp import dsl


def record_status(
    model: str,
    store_uri: str,
    run_id: str,
    status: dsl.PipelineTaskFinalStatus,
):
    """Runs after everything else (``dsl.ExitHandler``), even when a step failed or the run was cancelled."""

    from adapter_base.pipeline_steps import configure_step_logging, finalize_step

    configure_step_logging()
    print(finalize_step(model, run_id, status.state, status.error_message, store_uri=store_uri))
