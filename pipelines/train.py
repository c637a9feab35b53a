"""The train -> save -> evaluate pipeline, with an optional promotion gate.

    record_status (exit handler: marks the model failed if anything below fails)
    └── load_from_model -> train_model -> save_to_model -> evaluate_model
                                                         └── If promote: promote

``load_from_model`` checks the base version loads (digests verified);
``train_model`` trains on the model's train / validation subsets and *stages* the
result under the run id; ``save_to_model`` commits it as the next version;
``evaluate_model`` scores that version on the test filter (metrics, confusion
matrix, HTML report) and decides promotion: the chosen metric reaches the
threshold (a non-finite metric never does); ``promote`` then points the alias
(``production``) at it. Every step records itself in the run's journal in the
store when it finishes; ``record_status`` reads it when the backend's final state
does not say whether the run succeeded (``RUNNING``).
"""


from kfp import dsl

from components.catalog import build_components

from .compute import ComputeProfile, apply_profile, get_profile
from .store_env import store_step

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
        status = store_step(ops.record_status(model=model, store_uri=store_uri, run_id=run_id), "record status")
        with dsl.ExitHandler(status, name="train-save-evaluate"):
            load = store_step(
                ops.load_from_model(
                    adapter=adapter,
                    model=model,
                    store_uri=store_uri,
                    configuration=configuration,
                    run_id=run_id,
                    record_failures=True,
                    alias="",
                ),
                "load base model",
            )
            train = store_step(
                ops.train_model(
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
            save = store_step(ops.save_to_model(staged_model=train.outputs["staged_model"], store_uri=store_uri), "save new version")
            evaluate = store_step(
                ops.evaluate_model(
                    adapter=adapter,
                    trained_model=save.outputs["trained_model"],
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
                        trained_model=save.outputs["trained_model"],
                        alias=alias,
                        store_uri=store_uri,
                        run_id=run_id,
                    ),
                    "promote",
                )

    return train_pipeline
