"""Where each record lives in the store. The only module that spells out keys: every other module asks it.

    names/datasets/<name>.json          -> {"id": ...}   (unique names)
    names/models/<name>.json            -> {"id": ...}
    locks/<dataset-name|model-name|dataset|model>/<name or id>/<writer>.json   a holder's claim: a name being created, a record being rewritten (locks.py)
    datasets/<dataset_id>/dataset.json
    datasets/<dataset_id>/records/<item_id>.json                   Item
    datasets/<dataset_id>/record-pages/<item_id>.json              "name TAB etag TAB record" lines: copies of the records from that one on (record_pages.py)
    datasets/<dataset_id>/binaries/<item_id>                       the item's bytes
    datasets/<dataset_id>/paths/<item.path>.json                   {"id": ...} (unique paths)
    datasets/<dataset_id>/annotations/<item_id>/ground_truth.json  AnnotationCollection
    datasets/<dataset_id>/annotations/<item_id>/predictions/<model_id>/<NNNNNN>.json   PredictionSet of one model version
    datasets/<dataset_id>/annotations/<item_id>/predictions/<model_id>.json   PredictionSet of the previous layout (read as the version it records)
    datasets/<dataset_id>/annotations/<item_id>/embeddings/<model_id>.json    Embedding
    models/<model_id>/model.json
    models/<model_id>/versions/<NNNNNN>/files/<path>               artifact files
    models/<model_id>/versions/<NNNNNN>/manifest.json              written last
    models/<model_id>/claims/<NNNNNN>/<writer>.json                a writer's claim on that version number (version_claims.py)
    models/<model_id>/staging/<run_id>/files/<path>|manifest.json  trained, not yet a version
    models/<model_id>/checkpoints/files/<NNNNNN>/<path>            training checkpoints, by the push that uploaded them
    models/<model_id>/checkpoints/set.json                         CheckpointSet: the published files, written last
    models/<model_id>/evaluations/<NNNNNN>/<stamp>/metrics.json|report.html|report.md
    runs/<run_id>/prediction-report.json                           a prediction run's PredictionReport
    runs/<run_id>/prediction-summary.json                          the merged report of a sharded run
    runs/<run_id>/steps/<step>.json                                the journal: that step finished
    runs/<run_id>/shards/index.json                                the shard index (keys and counts)
    runs/<run_id>/shards/<NNNN>.json                               one shard's item ids
    runs/<run_id>/shards/<NNNN>.records.jsonl                      copies of its item records, as the split read them
    runs/<run_id>/shards/<NNNN>.report.json                        that shard's PredictionReport
    runs/<run_id>/shards/<NNNN>.attempts.json                      how many attempts at it started
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


def record_pages_prefix(dataset_id: str) -> str:
    return join_key("datasets", dataset_id, "record-pages") + "/"


def record_page(dataset_id: str, first_record: str) -> str:
    """The page of record copies that starts at the record named ``first_record`` (``<item_id>.json``)."""
    return join_key("datasets", dataset_id, "record-pages", first_record)


def item_paths_prefix(dataset_id: str) -> str:
    return join_key("datasets", dataset_id, "paths") + "/"


def item_path(dataset_id: str, path: str) -> str:
    return join_key("datasets", dataset_id, "paths", f"{path}.json")


def item_paths_below(dataset_id: str, folder: str) -> str:
    """The prefix of the path entries of items inside ``folder`` (an item path taken as a folder)."""
    return join_key("datasets", dataset_id, "paths", folder) + "/"


def item_binary(dataset_id: str, item_id: str) -> str:
    return join_key("datasets", dataset_id, "binaries", item_id)


def ground_truth(dataset_id: str, item_id: str) -> str:
    return join_key("datasets", dataset_id, "annotations", item_id, "ground_truth.json")


def annotations_prefix(dataset_id: str) -> str:
    """Every annotation (ground truth and prediction sets) of a dataset's items."""
    return join_key("datasets", dataset_id, "annotations") + "/"


def is_predictions_of(key: str, model_id: str) -> bool:
    """Whether ``key`` (below ``annotations_prefix``) is a prediction set (of any version) or an embedding of model ``model_id``."""
    return f"/predictions/{model_id}/" in key or key.endswith((f"/predictions/{model_id}.json", f"/embeddings/{model_id}.json"))


def prediction_set_of(key: str) -> tuple[str, int | None] | None:
    """``(model_id, version)`` of the prediction set at ``key`` (``version`` None: a set of the previous
    layout, whose version is the one it records); None when ``key`` is no prediction set."""
    head, sep, rest = key.rpartition("/predictions/")
    if not sep or not head or not rest.endswith(".json"):
        return None
    rest = rest[: -len(".json")]
    if "/" not in rest:
        return (rest, None) if rest else None
    model_id, _, version = rest.partition("/")
    return (model_id, int(version)) if model_id and version.isdigit() and "/" not in version else None


def item_annotations_prefix(dataset_id: str, item_id: str) -> str:
    """Everything recorded about one item: its ground truth, prediction sets and embeddings."""
    return join_key("datasets", dataset_id, "annotations", item_id) + "/"


def predictions_prefix(dataset_id: str, item_id: str) -> str:
    return join_key("datasets", dataset_id, "annotations", item_id, "predictions") + "/"


def predictions(dataset_id: str, item_id: str, model_id: str, version: int) -> str:
    """The prediction set of one model version on one item."""
    return join_key(model_predictions_prefix(dataset_id, item_id, model_id), f"{int(version):06d}.json")


def model_predictions_prefix(dataset_id: str, item_id: str, model_id: str) -> str:
    """Every version's prediction set of one model on one item."""
    return join_key("datasets", dataset_id, "annotations", item_id, "predictions", model_id) + "/"


def legacy_predictions(dataset_id: str, item_id: str, model_id: str) -> str:
    """Where the previous layout kept a model's one prediction set on an item (read, never written)."""
    return join_key("datasets", dataset_id, "annotations", item_id, "predictions", f"{model_id}.json")


def embedding(dataset_id: str, item_id: str, model_id: str) -> str:
    return join_key("datasets", dataset_id, "annotations", item_id, "embeddings", f"{model_id}.json")


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


def lock_claims_prefix(kind: str, subject: str) -> str:
    return join_key("locks", kind, subject) + "/"


def lock_claim(kind: str, subject: str, writer: str) -> str:
    return join_key(lock_claims_prefix(kind, subject), f"{writer}.json")


def version_claims_prefix(model_id: str, version: int) -> str:
    return join_key("models", model_id, "claims", f"{version:06d}") + "/"


def version_claim(model_id: str, version: int, writer: str) -> str:
    return join_key(version_claims_prefix(model_id, version), f"{writer}.json")


def staging_prefix(model_id: str, run_id: str) -> str:
    return join_key("models", model_id, "staging", run_id) + "/"


def staged_file(model_id: str, run_id: str, path: str) -> str:
    return join_key(staging_prefix(model_id, run_id), "files", path)


def staged_manifest(model_id: str, run_id: str) -> str:
    return join_key(staging_prefix(model_id, run_id), "manifest.json")


def checkpoints_prefix(model_id: str) -> str:
    return join_key("models", model_id, "checkpoints") + "/"


def checkpoint_set(model_id: str) -> str:
    """The record of the published checkpoints (``CheckpointSet``), written after their files."""
    return join_key(checkpoints_prefix(model_id), "set.json")


def checkpoint_files_prefix(model_id: str) -> str:
    return join_key(checkpoints_prefix(model_id), "files") + "/"


def checkpoint_file(model_id: str, generation: int, path: str) -> str:
    """One checkpoint file as uploaded by push number ``generation``."""
    return join_key(checkpoint_files_prefix(model_id), f"{generation:06d}", path)


def all_evaluations_prefix(model_id: str) -> str:
    """Every evaluation of every version of a model."""
    return join_key("models", model_id, "evaluations") + "/"


def evaluation_stamp(key: str) -> str:
    """The time stamp (``%Y%m%dT%H%M%S%fZ``) of the evaluation a file at ``key`` belongs to."""
    return key.rstrip("/").split("/")[-2] if key.endswith(("/" + EVALUATION_METRICS, "/" + EVALUATION_REPORT_HTML)) else key.rstrip("/").split("/")[-1]


def evaluations_prefix(model_id: str, version: int) -> str:
    """Every evaluation of one version of a model (one folder per stamp, sortable by time)."""
    return join_key("models", model_id, "evaluations", f"{version:06d}") + "/"


def evaluation_prefix(model_id: str, version: int, stamp: str) -> str:
    return join_key(evaluations_prefix(model_id, version), stamp) + "/"


#: The files of one evaluation, under its ``evaluation_prefix``.
EVALUATION_METRICS = "metrics.json"
EVALUATION_REPORT_HTML = "report.html"
EVALUATION_REPORT_MARKDOWN = "report.md"


def evaluation_file(evaluation: str, name: str) -> str:
    """``name`` (one of the ``EVALUATION_*`` names) in the evaluation at ``evaluation`` (its prefix)."""
    if name not in (EVALUATION_METRICS, EVALUATION_REPORT_HTML, EVALUATION_REPORT_MARKDOWN):
        raise ValueError(f"an evaluation holds no file {name!r}")
    return join_key(evaluation, name)


def runs_prefix() -> str:
    """Where every run's records live."""
    return "runs/"


def run_report_of(key: str) -> str | None:
    """The run id whose report (``prediction_report`` or ``prediction_summary``) is at ``key``, else None."""
    rest = key[len(runs_prefix()) :] if key.startswith(runs_prefix()) else ""
    run_id, sep, name = rest.partition("/")
    return run_id if sep and run_id and name in ("prediction-report.json", "prediction-summary.json") else None


def run_prefix(run_id: str) -> str:
    return join_key("runs", run_id) + "/"


def prediction_report(run_id: str) -> str:
    """The ``PredictionReport`` of one prediction run."""
    return join_key(run_prefix(run_id), "prediction-report.json")


def prediction_summary(run_id: str) -> str:
    """The merged prediction report of the shards of pipeline run ``run_id``."""
    return join_key(run_prefix(run_id), "prediction-summary.json")


def steps_prefix(run_id: str) -> str:
    """The journal of pipeline run ``run_id``: one record per finished step."""
    return join_key(run_prefix(run_id), "steps") + "/"


def step_record(run_id: str, step: str) -> str:
    """The journal record that ``step`` of pipeline run ``run_id`` finished."""
    return join_key(steps_prefix(run_id), f"{step}.json")


def shards_prefix(run_id: str) -> str:
    return join_key(run_prefix(run_id), "shards") + "/"


def shard_index(run_id: str) -> str:
    """The shard index of pipeline run ``run_id`` (shard numbers, keys and counts)."""
    return join_key(shards_prefix(run_id), "index.json")


def _shard(run_id: str, shard: int, suffix: str) -> str:
    return join_key(shards_prefix(run_id), f"{int(shard):04d}{suffix}")


def shard_manifest(run_id: str, shard: int) -> str:
    """One shard's item ids."""
    return _shard(run_id, shard, ".json")


def shard_records(run_id: str, shard: int) -> str:
    """Copies of one shard's item records, JSON lines in the manifest's order (``{}`` where unreadable)."""
    return _shard(run_id, shard, ".records.jsonl")


def shard_report(run_id: str, shard: int) -> str:
    """One shard's prediction report."""
    return _shard(run_id, shard, ".report.json")


def shard_attempts(run_id: str, shard: int) -> str:
    """How many attempts at one shard started."""
    return _shard(run_id, shard, ".attempts.json")
