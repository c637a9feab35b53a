"""The train -> commit -> evaluate pipeline, with an optional promotion gate.

    finalize (exit handler: marks the model failed if anything below fails)
    └── load -> train -> commit -> evaluate
                                  └── If promote: promote

``load`` checks the run (metric name, threshold, subsets and test filter with annotated
items: a refused run leaves the model untouched) and that the base version loads (digests verified); ``train`` trains on the
model's train / validation subsets and *stages* the result under the run id; ``commit``
makes it the next version; ``evaluate`` scores that version on the test filter
(metrics, confusion matrix, HTML report) and decides promotion: the chosen metric
reaches the threshold (a non-finite metric never does); ``promote`` then points the
alias (``production``) at it. Every step records itself in the run's journal in the
store when it finishes; ``finalize`` reads it when the backend's final state does not
say whether the run succeeded (``RUNNING``). Each step is ``components/<name>.py`` over
``adapter_base/steps/<name>.py``.
"""


from kfp import dsl

from components.catalog import build_components

from ..compute import ComputeProfile, get_profile
from .tasks import apply_profile, store_step

PIPELINE_NAME = "model-adapter-train"
DEFAULT_TEST_FILTERS = {"subset": "test"}
#: Retries of the training step: training resumes from the checkpoints it kept in the store.
TRAIN_RETRIES = 1


def build_train_pipeline(image: str | None = None, profile: str | ComputeProfile = "gpu", *, name: str = PIPELINE_NAME):
    """The pipeline function for ``image`` with the heavy steps (train, evaluate) on ``profile``."""
    ops = build_components(image)
    prof = get_profile(profile)

    @dsl.pipeline(
        name=name,
        description="Load a model, train it on its train/validation subsets, save it as a new version, "
        "evaluate it on a test subset and promote it when a metric reaches a threshold.",
    )
    def train_pipeline(
        adapter: str,
        model: str,
        dataset: str = "",
        store_uri: str = "",
        test_filters: dict = DEFAULT_TEST_FILTERS,
        metric: str = "accuracy",
        threshold: float = 0.9,
        alias: str = "production",
        configuration: dict = {},
        batch_size: int = 0,
    ):
        run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
        status = store_step(ops.finalize(model=model, store_uri=store_uri, run_id=run_id), "finalize")
        with dsl.ExitHandler(status, name="train-commit-evaluate"):
            load = store_step(
                ops.load(
                    adapter=adapter,
                    model=model,
                    store_uri=store_uri,
                    configuration=configuration,
                    run_id=run_id,
                    record_failures=True,
                    alias="",
                    dataset=dataset,
                    test_filters=test_filters,
                    metric=metric,
                    threshold=threshold,
                ),
                "load base model",
            )
            train = store_step(
                ops.train(
                    adapter=adapter,
                    base_model=load.outputs["base_model"],
                    dataset=dataset,
                    store_uri=store_uri,
                    configuration=configuration,
                    run_id=run_id,
                ),
                "train",
            )
            apply_profile(train, prof)
            train.set_retry(num_retries=TRAIN_RETRIES, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="600s")
            commit = store_step(ops.commit(staged_model=train.outputs["staged_model"], store_uri=store_uri), "commit new version")
            evaluate = store_step(
                ops.evaluate(
                    adapter=adapter,
                    trained_model=commit.outputs["trained_model"],
                    dataset=dataset,
                    filters=test_filters,
                    metric=metric,
                    threshold=threshold,
                    store_uri=store_uri,
                    configuration=configuration,
                    batch_size=batch_size,
                    run_id=run_id,
                ),
                "evaluate",
            )
            apply_profile(evaluate, prof)
            with dsl.If(evaluate.outputs["Output"] == True, name="metric-reaches-threshold"):  # noqa: E712 - a KFP condition
                store_step(
                    ops.promote(
                        trained_model=commit.outputs["trained_model"],
                        alias=alias,
                        store_uri=store_uri,
                        run_id=run_id,
                    ),
                    "promote",
                )

    return train_pipeline
