"""The batched prediction pipeline: split into shards, predict them side by side, merge the reports.

    load ───────────┐
    split_dataset ──┴─> ParallelFor(shard, parallelism cap): predict_shard  (compute profile, retries)
                        └─> merge_reports (Collected shard reports) -> summary

``split_dataset`` lists the matching items once and writes one manifest of item
ids per shard to the store (``runs/<run_id>/shards/``); only shard numbers travel
as parameters. Each ``predict_shard`` loads the model and streams its shard; a
failing item is recorded in that shard's report and does not fail the shard.
``merge_reports`` combines the reports into one summary (items done, items failed
with reasons, throughput), also written to ``runs/<run_id>/prediction-summary.json``.
"""


from kfp import dsl
from kfp.dsl import Dataset

from components.catalog import build_components

from ..compute import ComputeProfile, get_profile
from .tasks import apply_profile, store_step

PIPELINE_NAME = "model-adapter-predict"
DEFAULT_PARALLELISM = 8
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = "30s"
BACKOFF_FACTOR = 2.0
BACKOFF_MAX = "600s"


def build_predict_pipeline(
    image: str | None = None,
    profile: str | ComputeProfile = "gpu",
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    retries: int = DEFAULT_RETRIES,
    backoff: str = DEFAULT_BACKOFF,
    name: str = PIPELINE_NAME,
):
    """The pipeline function for ``image``; each shard runs on ``profile``, at most ``parallelism`` at once."""
    if parallelism < 1:
        raise ValueError(f"parallelism must be >= 1, got {parallelism}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    ops = build_components(image)
    prof = get_profile(profile)

    @dsl.pipeline(
        name=name,
        description="Predict every item of a dataset (with filters) in N shards side by side and merge the shard reports.",
    )
    def predict_pipeline(
        adapter: str,
        model: str,
        dataset: str,
        store_uri: str = "",
        filters: dict = {},
        num_shards: int = 4,
        batch_size: int = 0,
        configuration: dict = {},
        resume: bool = False,
        alias: str = "",
    ) -> Dataset:
        run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
        load = store_step(
            ops.load(
                adapter=adapter,
                model=model,
                store_uri=store_uri,
                configuration=configuration,
                run_id=run_id,
                record_failures=False,
                alias=alias,
            ),
            "load model",
        )
        split = store_step(
            ops.split_dataset(dataset=dataset, filters=filters, num_shards=num_shards, store_uri=store_uri, run_id=run_id),
            "split into shards",
        )
        with dsl.ParallelFor(split.outputs["Output"], parallelism=parallelism, name="shards") as shard:
            predict = store_step(
                ops.predict_shard(
                    adapter=adapter,
                    base_model=load.outputs["base_model"],
                    shards=split.outputs["shards"],
                    shard=shard,
                    store_uri=store_uri,
                    configuration=configuration,
                    batch_size=batch_size,
                    resume=resume,
                ),
                "predict shard",
            )
            apply_profile(predict, prof)
            if retries:
                predict.set_retry(num_retries=retries, backoff_duration=backoff, backoff_factor=BACKOFF_FACTOR, backoff_max_duration=BACKOFF_MAX)
        merge = store_step(
            ops.merge_reports(reports=dsl.Collected(predict.outputs["report"]), shards=split.outputs["shards"], store_uri=store_uri),
            "merge shard reports",
        )
        return merge.outputs["summary"]

    return predict_pipeline
