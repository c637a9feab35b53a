"""What each pipeline step does, one module per step, named like its component in ``components/``.

    train pipeline:   load -> train -> commit -> evaluate -> promote, with finalize as the exit step
    predict pipeline: load, split_dataset -> predict_shard (one per shard) -> merge_reports

Each module holds one plain function over the registry; the KFP components are thin
wrappers that read their input artifacts, call it, and write its result with
``artifact_io``. So the logic runs (and is tested) the same in-process, under ``kfp.local``
and in a cluster pod. Steps hand each other ``ModelRef`` s; heavy data (items, artifacts,
predictions, reports) only ever lives in the store.

Import a step from its module (``from adapter_base.steps.commit import commit``): the
package re-exports nothing, so a module and its function never shadow each other.

A train step that fails marks the model ``failed`` (``run <run_id>: <step>: <error>``) and
each one that finishes records itself in the run's ``journal``; ``finalize`` fills in for
failures no step could record (a killed pod). A step that finds another writer's version
past the one this run started from (``VersionConflictError``: ``commit`` is compare-and-swap
on it) leaves the model, its version and its status alone and journals ``superseded``.
"""
