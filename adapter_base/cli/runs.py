"""``model-adapter runs list|show``: the stored reports of prediction runs (``predict``, ``evaluate``, the predict pipeline)."""

from __future__ import annotations

import argparse
from typing import Any, Mapping

from ..errors import NotFoundError
from ..prediction import ItemFailure, PredictionReport
from ..registry import Registry
from ..sharding import summary_markdown
from ._common import add_json_option, add_store_option, open_registry, print_json, print_table


def is_sharded(report: Mapping[str, Any]) -> bool:
    """True for the merged summary of a sharded pipeline run, False for one ``PredictionReport``."""
    return "per_shard" in report


def report_from_dict(data: Mapping[str, Any]) -> PredictionReport:
    """A stored ``PredictionReport.to_dict()`` read back (its derived ``failed`` / ``items_per_second`` dropped)."""
    fields = {k: v for k, v in data.items() if k in PredictionReport.__dataclass_fields__ and k != "failures"}
    return PredictionReport(**fields, failures=[ItemFailure(**f) for f in data.get("failures", [])])


def _model_names(registry: Registry, report: Mapping[str, Any], names: dict[str, str]) -> str:
    """``name@vN`` of the model(s) a report is about."""
    if not is_sharded(report):
        return f"{report.get('model_name')}@v{report.get('model_version')}"
    for model_id in report.get("model_ids", []):
        if model_id not in names:
            try:
                names[model_id] = registry.get_model(model_id).name
            except NotFoundError:
                names[model_id] = f"{model_id} (deleted)"
    versions = ",".join(f"v{v}" for v in report.get("model_versions", []))
    return f"{'+'.join(names[m] for m in report.get('model_ids', [])) or '-'}@{versions or '?'}"


def _dataset_name(registry: Registry, report: Mapping[str, Any], names: dict[str, str]) -> str:
    """The name of the dataset a run predicted (its id when the dataset is gone, ``-`` for runs stored before runs said)."""
    if report.get("dataset_name"):
        return str(report["dataset_name"])
    ds_id = report.get("dataset_id")
    if not ds_id:
        return "-"
    if ds_id not in names:
        try:
            names[ds_id] = registry.get_dataset(ds_id).name
        except NotFoundError:
            names[ds_id] = f"{ds_id} (deleted)"
    return names[ds_id]


def run_row(registry: Registry, run_id: str, report: Mapping[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """What ``runs list`` says of one run: kind, model@version, dataset, subset, counts, status and time."""
    failed = report.get("failed", len(report.get("failures", [])))
    ok = not failed and not report.get("fatal_error") and not report.get("fatal_errors")
    filters = report.get("filters") or {}
    return {
        "run_id": run_id,
        "kind": f"pipeline ({report.get('shards')} shards)" if is_sharded(report) else str(report.get("kind") or "predict"),
        "model": _model_names(registry, report, names),
        "dataset": _dataset_name(registry, report, names),
        "subset": filters.get("subset") or ("-" if is_sharded(report) or not filters else "all"),
        "filters": filters,
        "predicted": report.get("succeeded", 0),
        "already_done": report.get("skipped", 0),
        "failed": failed,
        "total": report.get("total", 0),
        "status": "ok" if ok else "stopped early" if report.get("fatal_error") else "FAILED",
        "started_at": report.get("started_at") or "-",
    }


def cmd_list(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model_id = registry.get_model(args.model).id if args.model else None
        names: dict[str, str] = {}
        rows = []
        for run_id, report in registry.iter_run_reports():
            ids = report.get("model_ids") if is_sharded(report) else [report.get("model_id")]
            if model_id is not None and model_id not in (ids or []):
                continue
            rows.append((report.get("started_at") or "-", run_id, report))
        rows.sort(key=lambda r: r[0], reverse=True)
        listed = [run_row(registry, run_id, report, names) for _, run_id, report in rows[: args.limit]]
        if args.json:
            print_json(listed)
            return 0
        if not rows:
            print("no prediction runs" + (f" of model {args.model}" if args.model else ""))
            return 0
        keys = ("run_id", "kind", "model", "dataset", "subset", "predicted", "already_done", "failed", "total", "status", "started_at")
        print_table(
            ("RUN", "KIND", "MODEL", "DATASET", "SUBSET", "PREDICTED", "ALREADY DONE", "FAILED", "TOTAL", "STATUS", "STARTED"),
            [[row[k] for k in keys] for row in listed],
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        report = registry.get_run_report(args.run)
        if args.json:
            print_json(report)
        elif is_sharded(report):
            print(summary_markdown(report), end="")
        else:
            print(report_from_dict(report).summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list and show the stored reports of prediction runs")
    rsub = p.add_subparsers(dest="runs_cmd", required=True)
    ls = rsub.add_parser("list", help="list prediction runs (predict, evaluate, predict pipelines), newest first")
    ls.add_argument("--model", help="only runs of this model (name or id)")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    add_json_option(ls, "the runs")
    add_store_option(ls)
    ls.set_defaults(func=cmd_list)
    show = rsub.add_parser("show", help="show a run's report: counts, throughput and each failed item")
    show.add_argument("run", help="run id (see `runs list`)")
    show.add_argument("--json", action="store_true", help="print the stored report as JSON")
    add_store_option(show)
    show.set_defaults(func=cmd_show)
