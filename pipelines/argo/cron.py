"""A CronWorkflow that runs a pipeline's WorkflowTemplate on a schedule (Argo Workflows 4: ``schedules`` is a list).

``concurrencyPolicy: Forbid`` covers the whole run here (Argo starts the run itself, unlike a
CronJob that only submits one), ``startingDeadlineSeconds`` bounds how late a missed tick may
still start, and ``timezone`` is the schedule's (UTC unless given).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .settings import PIPELINE_LABEL, template_name
from .workflow import argo_name

DEFAULT_TIMEZONE = "UTC"
DEFAULT_STARTING_DEADLINE_S = 300


def check_cron(expr: str) -> str:
    """A 5-field cron expression (or an ``@every``/``@daily``-style one) as given; else a ValueError naming it."""
    text = expr.strip()
    if text.startswith("@"):
        return text
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {expr!r} has {len(fields)} field(s); Argo takes 5: minute hour day-of-month month day-of-week")
    return text


def parameter_values(arguments: Mapping[str, Any]) -> dict[str, str]:
    """Pipeline arguments as Argo parameter strings (objects as JSON, bools as true/false), Argo's names."""
    import json

    out = {}
    for name, value in arguments.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, sort_keys=True)
        else:
            text = str(value)
        out[argo_name(name)] = text
    return out


def build_cron_workflow(
    kind: str,
    name: str,
    schedules: Sequence[str],
    arguments: Mapping[str, Any],
    *,
    template: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    starting_deadline_seconds: int = DEFAULT_STARTING_DEADLINE_S,
    namespace: str | None = None,
) -> Any:
    """The Hera ``CronWorkflow`` ``name`` running WorkflowTemplate ``template`` with ``arguments`` on each of ``schedules``."""
    from hera.workflows import CronWorkflow, Parameter
    from hera.workflows import models as m

    if not schedules:
        raise ValueError("a CronWorkflow needs at least one cron expression")
    return CronWorkflow(
        name=name,
        namespace=namespace,
        labels={PIPELINE_LABEL: kind},
        schedules=[check_cron(s) for s in schedules],
        concurrency_policy="Forbid",
        starting_deadline_seconds=starting_deadline_seconds,
        timezone=timezone,
        workflow_template_ref=m.WorkflowTemplateRef(name=template or template_name(kind)),
        arguments=[Parameter(name=k, value=v) for k, v in parameter_values(arguments).items()],
    )
