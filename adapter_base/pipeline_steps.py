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
Each train step that finishes writes ``runs/<run_id>/steps/<step>.json`` (the run's
journal), so the exit step can tell what a run did when the backend cannot say.

Every value a step hands to KFP is strict JSON: the backend's Go launcher cannot
parse a bare ``NaN``, so non-finite numbers never leave a step as numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from . import sharding
from .adapter import BaseModelAdapter
from .entities import ArtifactManifest, Filters, Model
from .entities._base import utc_now
from .errors import ConflictError, NotFoundError, StoreError, ValidationError
from .flows.evaluate import headline
from .flows.predict import run_predictions
from .loading import load_adapter_class
from .metrics import format_metric, from_json_safe, json_safe, render_markdown_summary
from .registry import Registry, layout
from .secrets import install_redaction, redact


def configure_step_logging() -> None:
    """Info-level logs for a pipeline step, with every line (the adapter's too), warning and traceback redacted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_redaction()

log = logging.getLogger(__name__)

#: ``dsl.PipelineTaskFinalStatus.state`` values that say the wrapped steps succeeded: the KFP
#: backend passes the MLMD state of the exit handler's DAG (``COMPLETE``; ``CACHED`` for a
#: cached one), ``kfp.local`` and Vertex pass ``SUCCEEDED``.
SUCCESS_STATES = frozenset({"COMPLETE", "CACHED", "SUCCEEDED"})
#: States that say they did not: MLMD ``FAILED`` / ``CANCELED``, the ``CANCELLED`` spelling,
#: Argo's ``ERROR``. Any other state (``RUNNING``: the backend did not propagate the DAG's
#: state; ``UNKNOWN``, ``NEW``, empty) is decided from the run's journal in the store.
FAILURE_STATES = frozenset({"FAILED", "CANCELED", "CANCELLED", "ERROR"})
#: The train pipeline's steps in order; ``promote`` runs only when evaluate decided to promote.
TRAIN_STEPS = ("load", "train", "save", "evaluate", "promote")


# --- shared -------------------------------------------------------------------------


def write_json(path: str, value: Any) -> None:
    """Write ``value`` to a step's output file as strict JSON (non-finite numbers as strings)."""
    with open(path, "w") as f:
        json.dump(json_safe(value), f, indent=1, allow_nan=False)


def finite_numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries of ``values`` that are finite numbers (not bools), as floats: safe KFP metrics."""
    return {
        key: float(value)
        for key, value in values.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }


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


def journal_key(run_id: str, step: str) -> str:
    """``runs/<run_id>/steps/<step>.json``: the record that ``step`` of that run finished."""
    return layout.run_prefix(run_id) + f"steps/{step}.json"


def record_step(registry: Registry, run_id: str, step: str, **facts: Any) -> None:
    """Write the journal record of a finished step (``facts`` made strict JSON)."""
    if run_id and run_id != "-":
        registry.store.put_json(journal_key(run_id, step), json_safe({"run_id": run_id, "step": step, "finished_at": utc_now(), **facts}))


def finished_steps(registry: Registry, run_id: str) -> dict[str, dict[str, Any]]:
    """The journal of a run: each finished step's record, by step name."""
    prefix = layout.run_prefix(run_id) + "steps/"
    out: dict[str, dict[str, Any]] = {}
    for info in registry.store.list(prefix):
        name = info.key[len(prefix):]
        if name.endswith(".json") and "/" not in name:
            try:
                out[name[: -len(".json")]] = registry.store.get_json(info.key)
            except (NotFoundError, StoreError) as exc:  # an unreadable record is no proof the step finished
                log.warning("journal record %s is unreadable: %s", info.key, exc)
    return out


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
            if record_failures:
                record_step(registry, run_id, "load", model_id=loaded.id, version=loaded.version)
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
            record_step(registry, run_id, "train", model_id=trained.id, base_version=current.version)
            return {
                "model_id": trained.id,
                "model_name": trained.name,
                "base_version": current.version,
                "run_id": run_id,
                "store_uri": registry.store.uri,
                "staged": True,
                "training": json_safe(trained.metrics.get("training", {})),
            }


def save_step(staged_ref: Mapping[str, Any], *, store_uri: str = "") -> dict[str, Any]:
    """Commit the staged training result as the model's next version (status ``trained``)."""
    run_id = staged_ref["run_id"]
    with open_registry(store_uri) as registry:
        current = registry.get_model(staged_ref["model_id"])
        with recording_failure(registry, current, run_id, "save"):
            saved = registry.commit_staged(current, run_id, status="trained", status_message=None)
            log.info("saved %s as version %d", saved.name, saved.version)
            record_step(registry, run_id, "save", model_id=saved.id, version=saved.version)
            return model_reference(saved, registry.store.uri, base_version=staged_ref.get("base_version"), run_id=run_id)


@dataclass
class EvaluationOutcome:
    """What the evaluate step hands to KFP: metrics, the chosen metric, the promotion decision, reports.

    ``value`` may be NaN (e.g. the recall of a label the test subset lacks); ``promote`` and
    ``reason`` are what leave the step (strict JSON).
    """

    metrics: dict[str, Any]
    scalars: dict[str, float]
    metric: str
    value: float
    promote: bool
    reason: str
    report_html: str
    report_markdown: str
    report_uri: str
    metrics_key: str
    model_ref: dict[str, Any]


def promotion_decision(metric: str, value: float, threshold: float | None) -> tuple[bool, str]:
    """Whether ``value`` of ``metric`` earns promotion (``value >= threshold``), and why in words.

    A non-finite value (NaN, infinity) is never promoted; neither is anything without a threshold.
    """
    shown = format_metric(value, 4)
    if threshold is None:
        return False, f"{metric} = {shown}; no threshold given: not promoted"
    if not math.isfinite(value):
        return False, f"{metric} = {shown} is not a finite number: not promoted"
    if value >= threshold:
        return True, f"{metric} = {shown} >= threshold {threshold:g}: promoted"
    return False, f"{metric} = {shown} < threshold {threshold:g}: not promoted"


def metric_value(metrics: Mapping[str, Any], name: str) -> float:
    """A number from evaluation metrics: a top-level key (``accuracy``, ``map``), a headline
    key (``macro_f1``) or a dotted path (``macro.f1``, ``per_label.3.f1``).

    Stored metrics carry NaN / infinity as the strings ``json_safe`` writes; those come back
    as floats (a metric that scored NaN is a NaN, not a missing metric).
    """
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
    for value in map(from_json_safe, candidates):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    available = ", ".join(sorted(scalar_metrics(metrics)))
    raise ValidationError("evaluation", "metric", f"no numeric metric {name!r} (available: {available})")


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Finite numbers worth a KFP ``Metrics`` entry: top-level numbers, headline, macro/micro averages."""
    out = {**finite_numbers(metrics), **finite_numbers(headline(metrics))}
    for avg in ("macro", "micro"):
        out.update(finite_numbers({f"{avg}_{key}": value for key, value in (metrics.get(avg) or {}).items()}))
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
    threshold: float | None = None,
) -> EvaluationOutcome:
    """Evaluate the referenced version on ``filters`` (stored metrics and report); pick ``metric``.

    The promotion decision (``promotion_decision``: ``metric >= threshold``, never for a
    non-finite value) is recorded in the model's ``metrics["promotion"]`` and the run's journal.
    """
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
            promote, reason = promotion_decision(metric, value, threshold)
            log.info("version %d: %s", current.version, reason)
            decision = {"version": current.version, "metric": metric, "value": value, "threshold": threshold, "promote": promote, "reason": reason}
            latest = registry.get_model(current.id)
            registry.update_model(latest, metrics=json_safe({**latest.metrics, "promotion": {"run_id": run_id, **decision}}))
            record_step(registry, run_id, "evaluate", model_id=current.id, **decision)
            html = registry.store.get_bytes(result.report_key).decode()
            return EvaluationOutcome(
                metrics=result.metrics,
                scalars=scalar_metrics(result.metrics),
                metric=metric,
                value=value,
                promote=promote,
                reason=reason,
                report_html=html,
                report_markdown=render_markdown_summary(result.metrics),
                report_uri=result.report_uri,
                metrics_key=result.metrics_key,
                model_ref=model_reference(result.model, registry.store.uri),
            )


def promote_step(model_ref: Mapping[str, Any], alias: str, *, store_uri: str = "", run_id: str = "") -> dict[str, Any]:
    """Point ``alias`` (e.g. ``production``) at the referenced version (the log says the evaluate step's reason)."""
    with open_registry(store_uri) as registry:
        current = registry.get_model(model_ref["model_id"])
        with recording_failure(registry, current, run_id or "-", "promote"):
            version = int(model_ref["version"])
            updated = registry.set_alias(current, alias, version)
            reason = (current.metrics.get("promotion") or {}).get("reason", "")
            log.info("promoted %s v%d to %r (%s)", updated.name, version, alias, reason)
            record_step(registry, run_id, "promote", model_id=updated.id, alias=alias, version=version)
            return {"model_id": updated.id, "alias": alias, "version": version, "aliases": dict(updated.aliases)}


def unfinished_step(journal: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The first train step the journal lacks (``promote`` only if evaluate decided to promote); None if all finished."""
    for step in TRAIN_STEPS:
        if step == "promote" and not journal.get("evaluate", {}).get("promote"):
            return None
        if step not in journal:
            return step
    return None


def finalize_step(model: str, run_id: str, state: str | None, error_message: str | None = None, *, store_uri: str = "") -> str:
    """The exit step: make sure a train run that did not succeed leaves the model ``failed``.

    ``state`` is ``PipelineTaskFinalStatus.state``. A success state (``SUCCESS_STATES``)
    changes nothing. A failure state (``FAILURE_STATES``) marks the model failed, keeping
    the message a failing step already recorded (``run <run_id>: <step>: ...``). Any other
    state (``RUNNING`` when the backend did not propagate the DAG's state, unknown) is
    decided from the store: a failure this run recorded stays; a journal with every step
    finished (``unfinished_step``) is a success; otherwise the model is marked failed naming
    the step that did not finish. Returns what it did, for the log.
    """
    name = (state or "").strip().upper() or "UNKNOWN"
    said = name.lower()
    if name in SUCCESS_STATES:
        return f"run {run_id} {said}; model {model} left as it is"
    with open_registry(store_uri) as registry:
        try:
            current = registry.get_model(model)
        except NotFoundError as exc:
            return f"run {run_id} {said}; cannot record it: {exc}"
        prefix = f"run {run_id}:"
        if current.status == "failed" and (current.status_message or "").startswith(prefix):
            return f"run {run_id} {said}; model {model} already records it: {current.status_message}"
        if name in FAILURE_STATES:
            detail = error_message or "a step did not complete"
        else:
            journal = finished_steps(registry, run_id)
            missing = unfinished_step(journal)
            if missing is None:
                saved = journal["save"].get("version")
                return f"run {run_id} {said}; its journal shows every step finished (version {saved}); model {model} left as it is"
            done = ", ".join(step for step in TRAIN_STEPS if step in journal) or "none"
            detail = f"step {missing} did not finish (finished: {done})"
        message = redact(f"{prefix} pipeline {said}: {detail}")
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
    load fails, so a retry can help. Every attempt after the first (a retried pod, a
    retried run) skips the items this shard's run id already predicted, whatever
    ``resume`` says; ``resume`` also skips items any run predicted with this version.
    """
    shard = int(shard)
    run_id = index["run_id"]
    with open_registry(store_uri) as registry:
        ids = sharding.read_shard(registry.store, index, shard)
        attempt = sharding.start_shard_attempt(registry.store, run_id, shard)
        if attempt > 1:
            log.info("shard %d: attempt %d: skipping the items earlier attempts of this run predicted", shard, attempt)
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
            resume_run=attempt > 1,
            run_id=sharding.shard_run_id(run_id, shard),
            save_report=False,
        )
        out = {**report.to_dict(), "shard": shard, "attempt": attempt, "dataset_id": index["dataset_id"], "pipeline_run_id": run_id}
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
