"""``load``: resolve a model version and load it with the user's adapter (digests verified)."""

from kfp.dsl import Model, Output


def load(
    adapter: str,
    model: str,
    store_uri: str,
    configuration: dict,
    run_id: str,
    record_failures: bool,
    alias: str,
    base_model: Output[Model],
    dataset: str = "",
    test_filters: dict = {},
    metric: str = "",
    threshold: float = 0.0,
):
    """Load ``model`` with the adapter at ``adapter`` (``package.module:Class``); output its reference.

    The version is the one ``alias`` points at (``""``: the current version).
    With ``record_failures`` a failure marks the model ``failed`` (training runs), after the run's
    checks (``dataset``, ``test_filters``, ``metric``, ``threshold``): a run refused there leaves it alone.
    The ``Model`` artifact holds a ``ModelRef`` (model id, name, version, store URI,
    manifest digest); the files stay in the store.
    """
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.artifact_io import write_ref
    from adapter_base.steps.load import load as load_step

    start_step()
    ref = load_step(
        adapter, model, store_uri=store_uri, configuration=configuration, run_id=run_id,
        record_failures=record_failures, alias=alias, dataset=dataset, test_filters=test_filters, metric=metric, threshold=threshold,
    )
    write_ref(base_model, ref)
