"""Where each record lives in the store. The only module that spells out keys.

    names/datasets/<name>.json          -> {"id": ...}   (unique names)
    names/models/<name>.json            -> {"id": ...}
    datasets/<dataset_id>/dataset.json
    datasets/<dataset_id>/records/<item_id>.json                   Item
    datasets/<dataset_id>/binaries/<item_id>                       the item's bytes
    datasets/<dataset_id>/paths/<item.path>.json                   {"id": ...} (unique paths)
    datasets/<dataset_id>/annotations/<item_id>/ground_truth.json  AnnotationCollection
    datasets/<dataset_id>/annotations/<item_id>/predictions/<model_id>.json   PredictionSet
    models/<model_id>/model.json
    models/<model_id>/versions/<NNNNNN>/files/<path>               artifact files
    models/<model_id>/versions/<NNNNNN>/manifest.json              written last
    models/<model_id>/staging/<run_id>/files/<path>|manifest.json  trained, not yet a version
    models/<model_id>/checkpoints/<path>                           training checkpoints
    models/<model_id>/evaluations/<NNNNNN>/<stamp>/metrics.json|report.html
    runs/<run_id>/prediction-report.json                           a prediction run's PredictionReport
    runs/<run_id>/...                                              other per-run reports
"""

from __future__ import annotations

from ..entities._base import check_path_part
from ..storage import join_key


def check_name(entity: str, name: object) -> str:
    """Names of runs and the like: 1-128 of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit."""
    check_path_part(entity, "name", name)
    return name  # type: ignore[return-value]


def dataset_name(name: str) -> str:
    return join_key("names/datasets", f"{name}.json")


def model_name(name: str) -> str:
    return join_key("names/models", f"{name}.json")


def dataset_prefix(dataset_id: str) -> str:
    return join_key("datasets", dataset_id) + "/"


def dataset_record(dataset_id: str) -> str:
    return join_key("datasets", dataset_id, "dataset.json")


def datasets_prefix() -> str:
    return "names/datasets/"


def models_prefix() -> str:
    return "names/models/"


def item_records_prefix(dataset_id: str) -> str:
    return join_key("datasets", dataset_id, "records") + "/"


def item_record(dataset_id: str, item_id: str) -> str:
    return join_key("datasets", dataset_id, "records", f"{item_id}.json")


def item_paths_prefix(dataset_id: str) -> str:
    return join_key("datasets", dataset_id, "paths") + "/"


def item_path(dataset_id: str, path: str) -> str:
    return join_key("datasets", dataset_id, "paths", f"{path}.json")


def item_binary(dataset_id: str, item_id: str) -> str:
    return join_key("datasets", dataset_id, "binaries", item_id)


def ground_truth(dataset_id: str, item_id: str) -> str:
    return join_key("datasets", dataset_id, "annotations", item_id, "ground_truth.json")


def predictions_prefix(dataset_id: str, item_id: str) -> str:
    return join_key("datasets", dataset_id, "annotations", item_id, "predictions") + "/"


def predictions(dataset_id: str, item_id: str, model_id: str) -> str:
    return join_key("datasets", dataset_id, "annotations", item_id, "predictions", f"{model_id}.json")


def model_prefix(model_id: str) -> str:
    return join_key("models", model_id) + "/"


def model_record(model_id: str) -> str:
    return join_key("models", model_id, "model.json")


def version_prefix(model_id: str, version: int) -> str:
    return join_key("models", model_id, "versions", f"{version:06d}") + "/"


def artifact_file(model_id: str, version: int, path: str) -> str:
    return join_key(version_prefix(model_id, version), "files", path)


def manifest(model_id: str, version: int) -> str:
    return join_key(version_prefix(model_id, version), "manifest.json")


def staging_prefix(model_id: str, run_id: str) -> str:
    return join_key("models", model_id, "staging", run_id) + "/"


def checkpoints_prefix(model_id: str) -> str:
    return join_key("models", model_id, "checkpoints") + "/"


def evaluation_prefix(model_id: str, version: int, stamp: str) -> str:
    return join_key("models", model_id, "evaluations", f"{version:06d}", stamp) + "/"


def run_prefix(run_id: str) -> str:
    return join_key("runs", run_id) + "/"


def prediction_report(run_id: str) -> str:
    """The ``PredictionReport`` of one prediction run."""
    return join_key(run_prefix(run_id), "prediction-report.json")
