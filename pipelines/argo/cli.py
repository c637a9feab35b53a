"""``model-adapter argo ...``: the pipelines as Argo Workflows objects.

    model-adapter argo compile train|predict -o FILE [--image IMAGE] [--profile gpu|gpu-pool|cpu]
    model-adapter argo schedule train|predict --cron EXPR --name NAME --adapter ... --model ... (--render FILE | --server URL)
    model-adapter argo submit train|predict --server URL [--namespace NS] [--token TOKEN] --adapter ... --model ...
    model-adapter argo run train|predict --local --adapter PATH --model NAME [--dataset NAME] [--store URI] [--json] [--quiet]

hera is imported only when an argo command runs, so the rest of the CLI stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..compute import get_profile
from ..image_ref import chosen_image
from ..options import IMAGE_HELP, PROFILE_HELP, kind_parsers, param_options, pipeline_arguments
from .settings import WorkflowOptions, template_name


def _build_options(p: argparse.ArgumentParser, kind: str, default_profile: str) -> None:
    """Options that shape the WorkflowTemplate (not its run-time parameters)."""
    defaults = WorkflowOptions()
    p.add_argument("--image", default=None, help=IMAGE_HELP)
    p.add_argument("--profile", default=default_profile, help=f"{PROFILE_HELP} (default: {default_profile})")
    p.add_argument("--retries", type=int, default=defaults.retries, help=f"retries of each step; a deleted pod is always retried (default: {defaults.retries})")
    p.add_argument("--template-name", default=None, help=f"the WorkflowTemplate's name (default: {template_name(kind)})")
    p.add_argument("--namespace", default=None, help="namespace of the objects: written into them, and where submit/schedule create them (default: argo there; none written by compile)")
    if kind == "predict":
        p.add_argument("--parallelism", type=int, default=defaults.parallelism, help=f"at most this many shards at once (default: {defaults.parallelism})")


def build_options(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """The ``build_workflow_template`` keyword arguments of parsed options."""
    options = WorkflowOptions(retries=args.retries, **({"parallelism": args.parallelism} if kind == "predict" else {}))
    return {
        "image": chosen_image(args.image),
        "profile": get_profile(args.profile or "gpu"),
        "options": options,
        "name": args.template_name or template_name(kind),
        "namespace": args.namespace,
    }


def _write_yaml(path: str | Path, docs: list[dict[str, Any]]) -> Path:
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def cmd_compile(args: argparse.Namespace) -> int:
    from .workflow import render

    opts = build_options(args.kind, args)
    doc = render(args.kind, **opts)
    path = _write_yaml(args.output, [doc])
    image = doc["spec"]["templates"][0]["container"]["image"]
    print(f"wrote the {args.kind} WorkflowTemplate {opts['name']} to {path} (image {image}, profile {opts['profile'].describe()})")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from adapter_base.errors import ValidationError

    from .cron import build_cron_workflow
    from .workflow import render

    opts = build_options(args.kind, args)
    template = render(args.kind, **opts)
    try:
        cron = build_cron_workflow(
            args.kind,
            args.name,
            args.cron,
            pipeline_arguments(args.kind, args),
            template=opts["name"],
            timezone=args.timezone,
            starting_deadline_seconds=args.starting_deadline,
            namespace=args.namespace,
        ).to_dict()
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError("argo", "--cron", str(exc)) from None
    if args.render:
        path = _write_yaml(args.render, [template, cron])
        print(f"wrote the {args.kind} WorkflowTemplate {opts['name']} and the CronWorkflow {args.name} ({', '.join(args.cron)} {args.timezone}) to {path}")
        return 0
    from .server import connect

    conn = connect(args.server, args.namespace, args.token)
    did_template = conn.upsert_template(template)
    did_cron = conn.upsert_cron(cron)
    print(
        f"{did_template} WorkflowTemplate {opts['name']} and {did_cron} CronWorkflow {args.name} ({', '.join(args.cron)} {args.timezone}) "
        f"in namespace {conn.namespace} on {conn.url} (Argo {conn.version})"
    )
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from .cron import parameter_values
    from .server import connect
    from .settings import PIPELINE_LABEL
    from .workflow import render

    arguments = pipeline_arguments(args.kind, args)
    opts = build_options(args.kind, args)
    template = render(args.kind, **opts)
    conn = connect(args.server, args.namespace, args.token)
    did = conn.upsert_template(template)
    run = conn.submit(opts["name"], parameter_values(arguments), labels={PIPELINE_LABEL: args.kind})
    print(f"{did} WorkflowTemplate {opts['name']} in namespace {conn.namespace} (Argo {conn.version})")
    print(f"workflow: {run['name']}")
    print(f"uid: {run['uid']}")
    print(f"url: {conn.ui_url(run['name'])}")
    return 0


def _server_options(p: argparse.ArgumentParser) -> None:
    from .server import SERVER_ENV, TOKEN_ENV

    p.add_argument("--server", default=None, metavar="URL", help=f"Argo Server URL, e.g. https://localhost:2746 (default: ${SERVER_ENV})")
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token for the Argo Server (default: ${TOKEN_ENV}, preferred: a command line is visible to other users; `argo auth token` prints one)",
    )


def cmd_run(args: argparse.Namespace) -> int:
    import json
    import sys

    from adapter_base.errors import ValidationError

    from .cron import parameter_values
    from .local import run_workflow
    from .workflow import render

    if not args.local:
        raise ValidationError("argo", "--local", "`argo run` runs the rendered steps here: pass --local (use `argo submit` for a cluster)")
    from ..console import QUIET_TAIL_LINES, LogTail

    arguments = pipeline_arguments(args.kind, args)
    doc = render(args.kind, **build_options(args.kind, args))
    # the step logs go to stderr (or, with --quiet, only their tail, shown if the run fails): stdout is the result
    sink: Any = LogTail(QUIET_TAIL_LINES) if args.quiet else sys.stderr
    try:
        result = run_workflow(doc, parameter_values(arguments), log=sink)
    except Exception:
        if args.quiet:
            print(f"the last {QUIET_TAIL_LINES} lines of the step logs (run without --quiet for all):", file=sys.stderr)
            print("\n".join(sink.tail()), file=sys.stderr)
        raise
    if args.kind == "train":
        from ..results import model_state

        s = model_state(str(arguments["store_uri"]), str(arguments["model"]))
        promoted = s["aliases"].get(args.alias) == s["version"] and result.nodes["promote"][-1].phase == "Succeeded"
        if args.json:
            print(json.dumps({"kind": "train", "status": result.status, "uid": result.uid, "seconds": round(result.seconds, 3), "summary": s}, indent=2, default=str))
            return 0
        print(f"train workflow {result.status.lower()} in {result.seconds:.1f}s: model {s['model_name']} version {s['version']}, status {s['status']}")
        print(f"promoted: {args.alias} -> version {s['version']}" if promoted else f"not promoted: {args.alias} -> {s['aliases'].get(args.alias, 'unset')} ({args.metric} below {args.threshold})")
        return 0
    from adapter_base.sharding import summary_markdown

    summary = json.loads(result.outputs("merge-reports")["summary"])
    if args.json:
        print(json.dumps({"kind": "predict", "status": result.status, "uid": result.uid, "seconds": round(result.seconds, 3), "summary": summary}, indent=2, default=str))
    else:
        print(summary_markdown(summary))
        print(
            f"predict workflow {result.status.lower()} in {result.seconds:.1f}s: {summary['succeeded']} predicted, {summary['failed']} failed "
            f"of {summary['total']} in {summary['shards']} shard(s)"
        )
    return 0 if summary.get("ok", True) else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``argo`` and its subcommands to the ``model-adapter`` parser."""
    argo = sub.add_parser(
        "argo",
        help="the pipelines as Argo Workflows WorkflowTemplates and CronWorkflows",
        description="The train and predict pipelines for Argo Workflows (no Kubeflow Pipelines needed): every step runs "
        "`model-adapter step NAME` in the project image.",
    )
    actions = argo.add_subparsers(dest="argo_command", required=True, metavar="ACTION")

    compile_p = actions.add_parser("compile", help="write a pipeline's WorkflowTemplate (YAML)", description="Render a pipeline as an Argo WorkflowTemplate.")
    for kind, p in kind_parsers(compile_p, "Render").items():
        p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the YAML")
        _build_options(p, kind, default_profile="gpu")
        p.set_defaults(func=cmd_compile)

    schedule_p = actions.add_parser(
        "schedule",
        help="a CronWorkflow that runs a pipeline's WorkflowTemplate",
        description="Render a CronWorkflow (schedules, concurrencyPolicy Forbid, startingDeadlineSeconds, timezone) "
        "with the run's parameters, beside the WorkflowTemplate it runs.",
    )
    for kind, p in kind_parsers(schedule_p, "Schedule").items():
        p.add_argument("--cron", required=True, action="append", metavar="EXPR", help='cron expression, 5 fields, e.g. "0 3 * * *" (repeatable)')
        p.add_argument("--name", required=True, help="the CronWorkflow's name")
        p.add_argument("--timezone", default="UTC", help="IANA time zone of the schedule (default: UTC)")
        p.add_argument("--starting-deadline", type=int, default=300, metavar="SECONDS", help="a tick missed by more than this is skipped (default: 300)")
        p.add_argument("--render", default=None, metavar="FILE", help="write the WorkflowTemplate and the CronWorkflow to FILE (YAML) instead of creating them")
        _server_options(p)
        param_options(p, kind)
        _build_options(p, kind, default_profile="gpu")
        p.set_defaults(func=cmd_schedule)

    submit_p = actions.add_parser(
        "submit",
        help="create or update a pipeline's WorkflowTemplate on an Argo Server and start a run of it",
        description="Create (or replace) the WorkflowTemplate on an Argo Server, then start a Workflow from it with the run's "
        "parameters; prints the workflow name, uid and URL. The server is checked once first (/api/v1/version).",
    )
    for kind, p in kind_parsers(submit_p, "Submit").items():
        _server_options(p)
        param_options(p, kind)
        _build_options(p, kind, default_profile="gpu")
        p.set_defaults(func=cmd_submit)

    run_p = actions.add_parser(
        "run",
        help="run a pipeline's rendered WorkflowTemplate here, step by step (a check of the spec, not an Argo engine)",
        description="Render the WorkflowTemplate and run its steps here as subprocesses, each container's exact command and "
        "args, in dependency order, with withParam, when and onExit honoured. It checks the rendered spec; it is not an Argo "
        "engine (no scheduling, resources or pods). The store's settings come from this environment.",
    )
    for kind, p in kind_parsers(run_p, "Run").items():
        p.add_argument("--local", action="store_true", required=True, help="run here (required: use `argo submit` for a cluster)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument(
            "--quiet",
            action="store_true",
            help="hold back the step logs: print only the result (the logs' last lines are shown if the run fails)",
        )
        param_options(p, kind)
        _build_options(p, kind, default_profile="cpu")
        p.set_defaults(func=cmd_run, resume_flag="--resume" if kind == "predict" else "")
