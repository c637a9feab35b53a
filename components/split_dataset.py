"""``split_dataset``: list the matching items once and write N shard manifests to the store."""

from typing import List

from kfp.dsl import Dataset, Output


def split_dataset(
    dataset: str,
    filters: dict,
    num_shards: int,
    store_uri: str,
    run_id: str,
    shards: Output[Dataset],
) -> List[int]:
    """Write ``runs/<run_id>/shards/<NNNN>.json`` (item ids) per shard; returns the shard numbers.

    The ``Dataset`` artifact is the shard index (keys and counts, never item ids),
    so only shard numbers travel as parameters.
    """
    from adapter_base.steps.shared import start_step
    from adapter_base.steps.artifact_io import write_output
    from adapter_base.steps.split_dataset import split_dataset as split_step

    start_step()
    index = split_step(dataset, num_shards, run_id, filters=filters, store_uri=store_uri)
    write_output(shards, index, metadata=("run_id", "dataset_id", "num_shards", "total", "store_uri"))
    return [s["shard"] for s in index["shards"]]
