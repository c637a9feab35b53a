"""What each pipeline step does, as plain functions over the registry.

The KFP components in ``components/`` are thin wrappers: they call one function
here and move its small JSON-ready result into typed KFP artifacts. Keeping the
logic here means it runs (and is tested) the same in-process, under ``kfp.local``
and in a cluster pod.

Steps exchange *model references*: small dicts naming a model version in the
store (``model_id``, ``model_name``, ``version``, ``store_uri``, ``digest`` of the
version's artifact manifest). Heavy data (items, artifacts, predictions, reports)
only ever lives in the store.

Failures are recorded on the model by the step that fails
(``status=failed``, message ``run <run_id>: <step>: <error>``); the exit step
(``finalize_step``) fills in for failures no step could record (a killed pod).
"""

from __future__ import annotations

import hashlib
import logging
import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from . import sharding
from .adapter import BaseModelAdapter
from .entities import ArtifactManifest, Filters, Model
from .errors import ConflictError, NotFoundError, ValidationError
from .flows.evaluate import headline
from .flows.predict import run_predictions
from .loading import load_adapter_class
from .metrics import render_markdown_summary
from .registry import Registry
from .secrets import install_log_redaction, redact


def configure_step_logging() -> None:
    """Info-level logs for a pipeline step, with every line (the adapter's too) redacted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()

log = logging.getLogger(__name__)

#: Final states of a KFP run (``dsl.PipelineTaskFinalStatus.state``) that mean success.
SUCCESS_STATES = frozenset({"SUCCEEDED"})


# --- shared -------------------------------------------------------------------------


@contextmanager
def open_registry(store_uri: str | None = None) -> Iterator[Registry]:
    """The registry over ``store_uri`` (``""``/None: ``$MODEL_ADAPTER_STORE``), closed afterwards."""
    registry = Registry.open(store_uri or None)
    try:
        yield registry
    finally:
        registry.close()


def make_adapter(adapter_path: str, registry: Registry, configuration: Mapping[str, Any] | None = None) -> BaseModelAdapter:
    """An instance of the adapter at ``package.module:Class`` over ``registry``."""
    return load_adapter_class(adapter_path)(registry=registry, configuration=dict(configuration or {}) or None)


def manifest_digest(manifest: ArtifactManifest | None) -> str:
    """``sha256:<hex>`` over a version's (path, sha256) list: one value that pins its files."""
    if manifest is None:
        return ""
    h = hashlib.sha256()
    for f in sorted(manifest.files, key=lambda f: f.path):
        h.update(f"{f.sha256}  {f.path}\n".encode())
    return "sha256:" + h.hexdigest()


def model_reference(model: Model, store_uri: str, **extra: Any) -> dict[str, Any]:
    """The small dict a ``Model`` artifact carries (its metadata and file content)."""
    files = model.artifacts.files if model.artifacts else []
    return {
        "model_id": model.id,
        "model_name": model.name,
        "version": model.version,
        "store_uri": store_uri,
        "digest": manifest_digest(model.artifacts),
        "files": len(files),
        "total_size": sum(f.size for f in files),
        "status": model.status,
        **extra,
    }


def _check_version(current: Model, ref: Mapping[str, Any], step: str) -> None:
    want = int(ref["version"])
    if current.version != want:
        raise ConflictError(
            f"{step}: model {current.name!r} is at version {current.version}, but this run's earlier step saw version {want}: "
            "another run changed it meanwhile; start this run again"
        )


def record_failure(registry: Registry, model: Model | str, run_id: str, step: str, exc: BaseException) -> None:
    """Mark the model ``failed`` with ``run <run_id>: <step>: <error>`` (best effort, never raises)."""
    try:
        target = registry.get_model(model.id if isinstance(model, Model) else model)
        registry.set_status(target, "failed", redact(f"run {run_id}: {step}: {type(exc).__name__}: {exc}"))
    except Exception as err:  # noqa: BLE001 - recording must not hide the original error
        log.error("cannot record the failure of %s on the model: %s", step, err)


@contextmanager
def recording_failure(registry: Registry, model: Model | str, run_id: str, step: str) -> Iterator[None]:
    """Run a block; if it raises, record the failure on the model, then re-raise."""
    try:
        yield
    except BaseException as exc:
        record_failure(registry, model, run_id, step, exc)
        raise


# --- train -> save -> evaluate -> promote ---------------------------------------------


def load_step(
    adapter_path: str,
    model: str,
    *,
    store_uri: str = "",
    configuration: Mapping[str, Any] | None = None,
    run_id: str = "",
    record_failures: bool = True,
    alias: str = "",
) -> dict[str, Any]:
    """Load a version of the model with the adapter (artifact digests verified); returns its reference.

    The version is the one ``alias`` points at (e.g. ``production``), else the current one.
    ``record_failures``: mark the model ``failed`` if loading fails (training runs do;
    a prediction run does not change the model's status).
    """
    with open_registry(store_uri) as registry:
        entity = registry.get_model(model)
        guard = recording_failure(registry, entity, run_id or "-", "load") if record_failures else nullcontext()
        with guard:
            version = None
            if alias:
                if alias not in entity.aliases:
                    raise ValidationError("Model", "aliases", f"model {entity.name!r} has no alias {alias!r} (has: {', '.join(entity.aliases) or 'none'})")
                version = int(entity.aliases[alias])
            adapter = make_adapter(adapter_path, registry, configuration)
            path = adapter.load_from_model(entity, version=version)
            loaded = adapter.model_entity
            assert loaded is not None
            log.info("loaded %s v%d from %s (%s)", loaded.name, loaded.version, registry.store.uri, path)
            return model_reference(loaded, registry.store.uri, adapter=adapter_path, alias=alias)


def train_step(
    adapter_path: str,
    model_ref: Mapping[str, Any],
    run_id: str,
    *,
    dataset: str = "",
    store_uri: str = "",
    configuration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train from the referenced version and stage the result under ``run_id`` (no new version yet)."""
    with open_registry(store_uri) as registry:
        current = registry.get_model(model_ref["model_id"])
        with recording_failure(registry, current, run_id, "train"):
            _check_version(current, model_ref, "train")
            adapter = make_adapter(adapter_path, registry, configuration)
            trained = adapter.train_model(current, dataset=dataset or None, save=False, run_id=run_id)
            return {
                "model_id": trained.id,
                "model_name": trained.name,
                "base_version": current.version,
                "run_id": run_id,
                "store_uri": registry.store.uri,
                "staged": True,
                "training": trained.metrics.get("training", {}),
            }


def save_step(staged_ref: Mapping[str, Any], *, store_uri: str = "") -> dict[str, Any]:
    """Commit the staged training result as the model's next version (status ``trained``)."""
    run_id = staged_ref["run_id"]
    with open_registry(store_uri) as registry:
        current = registry.get_model(staged_ref["model_id"])
        with recording_failure(registry, current, run_id, "save"):
            saved = registry.commit_staged(current, run_id, status="trained", status_message=None)
            log.info("saved %s as version %d", saved.name, saved.version)
            return model_reference(saved, registry.store.uri, base_version=staged_ref.get("base_version"), run_id=run_id)


@dataclass
class EvaluationOutcome:
    """What the evaluate step hands to KFP: metrics, the chosen metric, report contents."""

    metrics: dict[str, Any]
    scalars: dict[str, float]
    metric: str
    value: float
    report_html: str
    report_markdown: str
    report_uri: str
    metrics_key: str
    model_ref: dict[str, Any]


def metric_value(metrics: Mapping[str, Any], name: str) -> float:
    """A number from evaluation metrics: a top-level key (``accuracy``, ``map``), a headline
    key (``macro_f1``) or a dotted path (``macro.f1``, ``per_label.3.f1``)."""
    candidates: list[Any] = []
    if name in metrics:
        candidates.append(metrics[name])
    head = headline(metrics)
    if name in head:
        candidates.append(head[name])
    cur: Any = metrics
    for part in name.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    candidates.append(cur)
    for value in candidates:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    available = ", ".join(sorted(scalar_metrics(metrics)))
    raise ValidationError("evaluation", "metric", f"no numeric metric {name!r} (available: {available})")


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Finite numbers worth a KFP ``Metrics`` entry: top-level numbers, headline, macro/micro averages."""
    out: dict[str, float] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)

    for key, value in metrics.items():
        put(key, value)
    for key, value in headline(metrics).items():
        put(key, value)
    for avg in ("macro", "micro"):
        for key, value in (metrics.get(avg) or {}).items():
            put(f"{avg}_{key}", value)
    out.pop("model_version", None)
    return out


def square_confusion(confusion: Mapping[str, Any]) -> tuple[list[str], list[list[int]]]:
    """A confusion matrix (rows: true labels, columns: predicted) as square categories x categories."""
    rows_labels = [str(x) for x in confusion.get("labels", [])]
    cols_labels = [str(x) for x in confusion.get("columns", [])]
    categories = rows_labels + [c for c in cols_labels if c not in rows_labels]
    pos = {c: i for i, c in enumerate(categories)}
    matrix = [[0] * len(categories) for _ in categories]
    for r, row in enumerate(confusion.get("rows", [])):
        for c, count in enumerate(row):
            matrix[pos[rows_labels[r]]][pos[cols_labels[c]]] += int(count)
    return categories, matrix


def evaluate_step(
    adapter_path: str,
    model_ref: Mapping[str, Any],
    run_id: str,
    *,
    dataset: str = "",
    filters: Mapping[str, Any] | None = None,
    metric: str = "accuracy",
    store_uri: str = "",
    configuration: Mapping[str, Any] | None = None,
    batch_size: int = 0,
) -> EvaluationOutcome:
    """Evaluate the referenced version on ``filters`` (stored metrics and report); pick ``metric``."""
    with open_registry(store_uri) as registry:
        current = registry.get_model(model_ref["model_id"])
        with recording_failure(registry, current, run_id, "evaluate"):
            _check_version(current, model_ref, "evaluate")
            dataset_ref = dataset or current.dataset_id
            if not dataset_ref:
                raise ValidationError("evaluate", "dataset", f"model {current.name!r} names no dataset; pass one")
            adapter = make_adapter(adapter_path, registry, configuration)
            result = adapter.evaluate_model(
                current, dataset_ref, filters=Filters.coerce(dict(filters or {})), batch_size=batch_size or None, run_id=f"{run_id}-evaluate"
            )
            value = metric_value(result.metrics, metric)
            html = registry.store.get_bytes(result.report_key).decode()
            return EvaluationOutcome(
                metrics=result.metrics,
                scalars=scalar_metrics(result.metrics),
                metric=metric,
                value=value,
                report_html=html,
                report_markdown=render_markdown_summary(result.metrics),
                report_uri=result.report_uri,
                metrics_key=result.metrics_key,
                model_ref=model_reference(result.model, registry.store.uri),
            )


def promote_step(model_ref: Mapping[str, Any], alias: str, *, store_uri: str = "", run_id: str = "", metric: str = "", value: float | None = None, threshold: float | None = None) -> dict[str, Any]:
    """Point ``alias`` (e.g. ``production``) at the referenced version."""
    with open_registry(store_uri) as registry:
        current = registry.get_model(model_ref["model_id"])
        with recording_failure(registry, current, run_id or "-", "promote"):
            version = int(model_ref["version"])
            updated = registry.set_alias(current, alias, version)
            log.info("promoted %s v%d to %r (%s=%s >= %s)", updated.name, version, alias, metric, value, threshold)
            return {"model_id": updated.id, "alias": alias, "version": version, "aliases": dict(updated.aliases)}


def finalize_step(model: str, run_id: str, state: str, error_message: str | None = None, *, store_uri: str = "") -> str:
    """The exit step: on a run that did not succeed, make sure the model says ``failed``.

    A step that failed with a Python error already recorded ``run <run_id>: <step>: ...``;
    that message is kept. Otherwise (a killed pod, a cancelled run) the run's own error is
    recorded. On success nothing changes. Returns what it did, for the log.
    """
    if state in SUCCESS_STATES:
        return f"run {run_id} {state.lower()}; model {model} left as it is"
    with open_registry(store_uri) as registry:
        try:
            current = registry.get_model(model)
        except NotFoundError as exc:
            return f"run {run_id} {state.lower()}; cannot record it: {exc}"
        prefix = f"run {run_id}:"
        if current.status == "failed" and (current.status_message or "").startswith(prefix):
            return f"run {run_id} {state.lower()}; model {model} already records it: {current.status_message}"
        message = redact(f"{prefix} pipeline {state.lower()}: {error_message or 'a step did not complete'}")
        registry.set_status(current, "failed", message)
        return f"model {model} marked failed: {message}"


# --- batched prediction ---------------------------------------------------------------


def split_step(dataset: str, num_shards: int, run_id: str, *, filters: Mapping[str, Any] | None = None, store_uri: str = "") -> dict[str, Any]:
    """List the matching item ids once and write ``num_shards`` shard manifests; returns the index."""
    with open_registry(store_uri) as registry:
        ds = registry.get_dataset(dataset)
        ids = sharding.list_item_ids(registry, ds.id, Filters.coerce(dict(filters or {})))
        index = sharding.write_shards(registry.store, run_id, ds.id, ids, int(num_shards), filters=filters)
        index["store_uri"] = registry.store.uri
        log.info("split %d item(s) of %s into %d shard(s) under %s", len(ids), ds.name, index["num_shards"], sharding.shards_prefix(run_id))
        return index


def predict_shard_step(
    adapter_path: str,
    model_ref: Mapping[str, Any],
    index: Mapping[str, Any],
    shard: int,
    *,
    store_uri: str = "",
    configuration: Mapping[str, Any] | None = None,
    batch_size: int = 0,
    resume: bool = False,
) -> dict[str, Any]:
    """Predict one shard's items (streaming); returns its report (also written to the store).

    The version loaded is the one in ``model_ref`` (pinned for every shard). Items that
    fail are in the report; the step itself fails only when the listing or the model
    load fails, so a retry can help.
    """
    shard = int(shard)
    run_id = index["run_id"]
    with open_registry(store_uri) as registry:
        ids = sharding.read_shard(registry.store, index, shard)
        adapter = make_adapter(adapter_path, registry, configuration)
        # Every shard loads the version the load step resolved, even if a newer one lands meanwhile.
        adapter.load_from_model(model_ref["model_id"], version=int(model_ref["version"]) or None)
        loaded = adapter.model_entity
        assert loaded is not None
        if model_ref.get("digest") and manifest_digest(loaded.artifacts) != model_ref["digest"]:
            raise ConflictError(f"model {loaded.name!r} version {loaded.version} no longer has the files the load step saw")
        report = run_predictions(
            adapter,
            sharding.iter_shard_items(registry, index["dataset_id"], ids),
            batch_size=batch_size or None,
            resume=resume,
            run_id=sharding.shard_run_id(run_id, shard),
            save_report=False,
        )
        out = {**report.to_dict(), "shard": shard, "dataset_id": index["dataset_id"], "pipeline_run_id": run_id}
        registry.store.put_json(sharding.shard_report_key(run_id, shard), out)
        log.info("shard %d: %s", shard, report.summary())
        if report.fatal_error:
            raise RuntimeError(f"shard {shard} aborted: {report.fatal_error}")
        return out


def merge_step(reports: list[Mapping[str, Any]], run_id: str, *, store_uri: str = "") -> dict[str, Any]:
    """Merge the shard reports into one summary, written to ``runs/<run_id>/prediction-summary.json``."""
    summary = sharding.merge_reports(reports, run_id=run_id)
    with open_registry(store_uri) as registry:
        summary["summary_key"] = sharding.summary_key(run_id)
        summary["store_uri"] = registry.store.uri
        registry.store.put_json(summary["summary_key"], summary)
    return summary
