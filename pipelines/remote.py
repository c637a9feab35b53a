"""Talking to a KFP API: submit runs, keep one recurring run per name, list runs.

The functions take a client object (``kfp.Client`` or anything with the same few
methods), so the create-or-update logic of schedules is testable without a server.
Credentials never travel this way: steps read them from a Kubernetes Secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from adapter_base.errors import ValidationError

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "model-adapter"
PAGE_SIZE = 100


def make_client(host: str, namespace: str | None = None) -> Any:
    """A ``kfp.Client`` for the KFP API at ``host`` (e.g. ``http://ml-pipeline.kubeflow:8888``)."""
    import kfp

    if not host:
        raise ValidationError("pipeline", "host", "a KFP API URL is needed (--host)")
    return kfp.Client(host=host, namespace=namespace)


def run_url(host: str, run_id: str) -> str:
    """The KFP UI address of a run."""
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"


def run_name(kind: str, model: str) -> str:
    """A readable, unique-enough run name: ``<kind>-<model>-<UTC timestamp>``."""
    return f"{kind}-{model}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


@dataclass
class SubmitResult:
    run_id: str
    url: str
    run_name: str
    experiment: str
    state: str | None = None


def submit_run(
    client: Any,
    package_path: str,
    arguments: Mapping[str, Any],
    *,
    host: str,
    run_name: str,
    experiment: str = DEFAULT_EXPERIMENT,
    namespace: str | None = None,
    pipeline_root: str | None = None,
) -> SubmitResult:
    """Create a run of a compiled pipeline; returns its id and UI address."""
    result = client.create_run_from_pipeline_package(
        package_path,
        arguments=dict(arguments),
        run_name=run_name,
        experiment_name=experiment,
        namespace=namespace,
        pipeline_root=pipeline_root or None,
    )
    return SubmitResult(run_id=result.run_id, url=run_url(host, result.run_id), run_name=run_name, experiment=experiment)


def wait_for_run(client: Any, run_id: str, timeout_s: float) -> str:
    """Wait until the run ends (or ``timeout_s``); returns its final state, e.g. ``SUCCEEDED``."""
    run = client.wait_for_run_completion(run_id, timeout=int(timeout_s))
    return str(getattr(run, "state", "UNKNOWN"))


def normalize_cron(expr: str) -> str:
    """KFP's 6-field cron (seconds first): a 5-field expression gets ``0`` seconds; ``@daily`` etc. pass."""
    expr = " ".join((expr or "").split())
    if expr.startswith("@"):
        return expr
    n = len(expr.split(" ")) if expr else 0
    if n == 5:
        return "0 " + expr
    if n == 6:
        return expr
    raise ValidationError("schedule", "cron", f"expected 5 or 6 cron fields (or @daily, @every 1h), got {expr!r}")


def _pages(list_fn: Any, items_attr: str, **kwargs: Any) -> Iterator[Any]:
    token = ""
    while True:
        page = list_fn(page_token=token, page_size=PAGE_SIZE, **kwargs)
        yield from getattr(page, items_attr, None) or []
        token = getattr(page, "next_page_token", None) or ""
        if not token:
            return


def find_recurring_runs(client: Any, name: str, namespace: str | None = None) -> list[Any]:
    """Every recurring run whose display name is exactly ``name``."""
    return [r for r in _pages(client.list_recurring_runs, "recurring_runs", namespace=namespace) if getattr(r, "display_name", None) == name]


@dataclass
class ScheduleResult:
    action: str  # created | updated
    recurring_run_id: str
    name: str
    cron: str
    max_concurrency: int
    experiment_id: str
    replaced: list[str] = field(default_factory=list)


def upsert_recurring_run(
    client: Any,
    *,
    name: str,
    package_path: str,
    params: Mapping[str, Any],
    cron: str,
    experiment: str = DEFAULT_EXPERIMENT,
    max_concurrency: int = 1,
    namespace: str | None = None,
    description: str | None = None,
) -> ScheduleResult:
    """Create the recurring run ``name``, or replace the one(s) of that name: never two of them.

    KFP has no update of a recurring run, so an update creates the new one
    *disabled*, deletes every old one of that name, then enables the new one: at no
    point do two run on schedule, and if creating fails the old one is untouched.
    ``max_concurrency`` (default 1) keeps a slow run from overlapping the next.
    """
    if not name:
        raise ValidationError("schedule", "name", "a recurring run needs a name (--name)")
    if max_concurrency < 1:
        raise ValidationError("schedule", "max_concurrency", f"must be >= 1, got {max_concurrency}")
    cron = normalize_cron(cron)
    exp = client.create_experiment(experiment, namespace=namespace)  # gets it when it exists
    existing = find_recurring_runs(client, name, namespace)
    created = client.create_recurring_run(
        experiment_id=exp.experiment_id,
        job_name=name,
        description=description,
        cron_expression=cron,
        max_concurrency=max_concurrency,
        no_catchup=True,
        params=dict(params),
        pipeline_package_path=package_path,
        enabled=not existing,
    )
    new_id = created.recurring_run_id
    replaced = []
    for old in existing:
        if old.recurring_run_id == new_id:
            continue
        client.delete_recurring_run(old.recurring_run_id)
        replaced.append(old.recurring_run_id)
    if existing:
        client.enable_recurring_run(new_id)
    log.info("%s recurring run %s (%s), cron %r", "updated" if existing else "created", name, new_id, cron)
    return ScheduleResult(
        action="updated" if existing else "created",
        recurring_run_id=new_id,
        name=name,
        cron=cron,
        max_concurrency=max_concurrency,
        experiment_id=exp.experiment_id,
        replaced=replaced,
    )


def list_runs(client: Any, *, experiment: str | None = None, namespace: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs (newest first): id, name, state, created / finished times."""
    experiment_id = None
    if experiment:
        experiment_id = client.get_experiment(experiment_name=experiment, namespace=namespace).experiment_id
    page = client.list_runs(page_size=max(1, limit), sort_by="created_at desc", experiment_id=experiment_id, namespace=namespace)
    out = []
    for r in getattr(page, "runs", None) or []:
        out.append(
            {
                "run_id": r.run_id,
                "name": r.display_name,
                "state": str(r.state) if r.state is not None else "",
                "created_at": _iso(r.created_at),
                "finished_at": _iso(getattr(r, "finished_at", None)),
            }
        )
    return out


def _iso(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.year < 1971:  # KFP reports "not finished" as the epoch
            return ""
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)

