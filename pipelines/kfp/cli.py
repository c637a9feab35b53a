"""``model-adapter pipeline ...``: compile, run locally, submit, schedule and list the KFP pipelines.

    model-adapter pipeline compile train|predict -o FILE [--image IMAGE] [--profile gpu|gpu-pool|cpu]
    model-adapter pipeline run train|predict --local --adapter PATH --model NAME [--dataset NAME] [--store URI] [--quiet] [--runner docker --image IMG]
    model-adapter pipeline submit train|predict --host URL --adapter PATH --model NAME --dataset NAME [--wait]
    model-adapter pipeline schedule train|predict --cron EXPR --host URL --name NAME --adapter ... --model ...
    model-adapter pipeline runs --host URL [--namespace NS] [--token TOKEN]

kfp is imported only when a pipeline command runs, so the rest of the CLI stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from adapter_base.errors import ValidationError

from ..compute import get_profile
from ..image_ref import chosen_image
from ..console import QUIET_TAIL_LINES, LogTail
from ..options import IMAGE_HELP, PROFILE_HELP, kind_parsers, param_options, pipeline_arguments
from .remote import BACKEND_FLOOR_HELP, MIN_BACKEND, SA_TOKEN_ENV, SA_TOKEN_PATH, TOKEN_ENV



# --- options ----------------------------------------------------------------------------


def _build_options(p: argparse.ArgumentParser, kind: str, default_profile: str) -> None:
    """Options that shape the compiled pipeline (not its run-time parameters)."""
    p.add_argument("--image", default=None, help=IMAGE_HELP)
    p.add_argument("--profile", default=default_profile, help=f"{PROFILE_HELP} (default: {default_profile})")
    if kind == "predict":
        p.add_argument("--parallelism", type=int, default=None, help="at most this many shards at once (default: 8)")
        p.add_argument("--retries", type=int, default=None, help="retries of a failed shard, with exponential backoff (default: 3)")


def _remote_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", required=True, help="KFP API URL, e.g. http://ml-pipeline.kubeflow.svc.cluster.local:8888")
    p.add_argument(
        "--namespace",
        default=None,
        help="Kubeflow profile namespace: runs, experiments and recurring runs are created and listed there "
        "(multi-user Kubeflow; leave out for a standalone KFP)",
    )
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token for a multi-user Kubeflow from outside the cluster (default: ${TOKEN_ENV}, preferred: a command "
        f"line is visible to other users). In a pod the projected service-account token at ${SA_TOKEN_ENV} "
        f"(default {SA_TOKEN_PATH}) is used; a standalone KFP needs none",
    )
    p.add_argument("--experiment", default="", help="experiment name (default: model-adapter)")
    p.add_argument("--ui-url", default=None, help="KFP UI base URL for run links (default: --host)")


# --- argument handling ------------------------------------------------------------------


def build_options(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """Image, profile and builder options from parsed options ("" means the default, as CronJobs may pass)."""
    profile = get_profile(getattr(args, "profile", None) or "gpu")
    opts: dict[str, Any] = {"image": chosen_image(getattr(args, "image", None)), "profile": profile}
    if kind == "predict":
        if getattr(args, "parallelism", None):
            opts["parallelism"] = args.parallelism
        if getattr(args, "retries", None) is not None:
            opts["retries"] = args.retries
    return opts


def _compile_to(kind: str, args: argparse.Namespace, path: str | Path) -> Path:
    from .build import compile_pipeline

    opts = build_options(kind, args)
    return compile_pipeline(kind, path, opts.pop("image"), opts.pop("profile"), **opts)


# --- commands ---------------------------------------------------------------------------


def cmd_compile(args: argparse.Namespace) -> int:
    path = _compile_to(args.kind, args, args.output)
    opts = build_options(args.kind, args)
    from components._factory import default_image

    print(f"compiled the {args.kind} pipeline to {path} (image {opts['image'] or default_image()}, profile {opts['profile'].describe()})")
    return 0




def cmd_run(args: argparse.Namespace) -> int:
    if not args.local:
        raise ValidationError("pipeline", "--local", "`pipeline run` runs under kfp.local: pass --local (use `pipeline submit` for a cluster)")
    from .local import run_local

    opts = build_options(args.kind, args)
    # kfp.local streams every step's log to stdout: send it to stderr (or, with --quiet, keep only
    # its tail, shown if the run fails), keep stdout for the result.
    sink: Any = LogTail(QUIET_TAIL_LINES) if args.quiet else sys.stderr
    try:
        with contextlib.redirect_stdout(sink):
            result = run_local(args.kind, pipeline_arguments(args.kind, args), pipeline_root=args.pipeline_root, runner=args.runner, engine=args.engine, **opts)
    except Exception:
        if args.quiet:
            print(f"the last {QUIET_TAIL_LINES} lines of the step logs (run without --quiet for all):", file=sys.stderr)
            print("\n".join(sink.tail()), file=sys.stderr)
        raise
    if args.json:
        print(json.dumps({"kind": result.kind, "seconds": round(result.seconds, 3), "pipeline_root": result.pipeline_root, "summary": result.summary}, indent=2, default=str))
        return 0 if args.kind == "train" or result.summary.get("ok", True) else 1
    s = result.summary
    for f in s.get("evaluation_failures") or []:  # one line per failed item, as for a predict run
        where = f" ({f['path']})" if f.get("path") else ""
        print(f"FAILED {f['item_id']}{where} at evaluate/{f.get('stage')}: {f.get('error')}")
    if args.kind == "train":
        from adapter_base.cli._common import metrics_text

        ev = s.get("evaluation") or {}
        scores = metrics_text({k: v for k, v in ev.items() if k not in ("version", "report", "report_uri", "dataset_id")})
        print(f"train pipeline finished in {result.seconds:.1f}s: model {s['model_name']} version {s['version']}, status {s['status']}")
        if ev:
            print(f"evaluation: {scores}")
            print(f"report: {ev.get('report_uri') or ev.get('report')}")
        alias = args.alias
        if s["aliases"].get(alias) == s["version"]:
            print(f"promoted: {alias} -> version {s['version']}")
        else:
            print(f"not promoted: {alias} -> {s['aliases'].get(alias, 'unset')} ({args.metric} below {args.threshold})")
        return 0
    from adapter_base.sharding import summary_markdown

    if args.quiet:
        for f in s.get("failures", []):
            where = f" ({f['path']})" if f.get("path") else ""
            print(f"FAILED {f['item_id']}{where} at {f.get('stage')} (shard {f.get('shard')}): {f.get('error')}")
        for f in s.get("fatal_errors", []):
            print(f"ABORTED shard {f['shard']}: {f['error']}")
    else:
        print(summary_markdown(s))
    print(f"predict pipeline finished in {result.seconds:.1f}s: {s['succeeded']} predicted, {s['failed']} failed of {s['total']} in {s['shards']} shard(s)")
    return 0 if s.get("ok", True) else 1


def _connect(args: argparse.Namespace, *, check_floor: bool) -> Any:
    """A checked connection to the KFP API of ``args`` (host, namespace, token)."""
    from .remote import connect

    return connect(args.host, args.namespace or None, args.token, min_backend=MIN_BACKEND if check_floor else None)


def _skip_reason(conn: Any, args: argparse.Namespace, name: str, experiment: str) -> str | None:
    """Why this submission must not create a run (``--skip-if-exists``, ``--skip-if-active``), or None."""
    from .remote import find_active_run, find_run_named

    with conn.errors(), contextlib.redirect_stdout(sys.stderr):
        if args.skip_if_exists:
            existing = find_run_named(conn.client, name, experiment=experiment, namespace=conn.namespace)
            if existing is not None:
                return f"run {name} already exists ({existing.run_id}, {existing.state}): not creating it again"
        if args.skip_if_active:
            active = find_active_run(conn.client, args.kind, args.model, experiment=experiment, namespace=conn.namespace)
            if active is not None:
                return f"run {active.display_name} ({active.run_id}) of the {args.kind} pipeline on model {args.model} is still {active.state}"
    return None


def cmd_submit(args: argparse.Namespace) -> int:
    from .remote import DEFAULT_EXPERIMENT, run_name, submit_run, wait_for_run

    arguments = pipeline_arguments(args.kind, args)
    build_options(args.kind, args)  # a bad --image or --profile is refused before the API is called
    if args.skip_if_exists and not args.run_name:
        raise ValidationError("pipeline", "--skip-if-exists", "needs --run-name (the name that is created once)")
    name = args.run_name or run_name(args.kind, args.model)
    experiment = args.experiment or DEFAULT_EXPERIMENT
    conn = _connect(args, check_floor=True)
    reason = _skip_reason(conn, args, name, experiment) if args.skip_if_exists or args.skip_if_active else None
    if reason:
        print(f"skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory(prefix="model-adapter-submit-") as tmp:
        path = _compile_to(args.kind, args, Path(tmp) / f"{args.kind}.yaml")
        # kfp.Client prints experiment and run links: keep stdout for the result.
        with conn.errors(), contextlib.redirect_stdout(sys.stderr):
            result = submit_run(
                conn.client,
                str(path),
                arguments,
                host=args.ui_url or args.host,
                run_name=name,
                experiment=experiment,
                namespace=conn.namespace,
                pipeline_root=args.pipeline_root,
            )
    print(f"run_id: {result.run_id}")
    print(f"url: {result.url}")
    sys.stdout.flush()
    if not args.wait:
        return 0
    with conn.errors(), contextlib.redirect_stdout(sys.stderr):
        state = wait_for_run(conn.client, result.run_id, args.timeout)
    print(f"state: {state}")
    return 0 if state.upper() == "SUCCEEDED" else 1


def cmd_schedule(args: argparse.Namespace) -> int:
    from .remote import DEFAULT_EXPERIMENT, upsert_recurring_run

    arguments = pipeline_arguments(args.kind, args)
    with tempfile.TemporaryDirectory(prefix="model-adapter-schedule-") as tmp:
        path = _compile_to(args.kind, args, Path(tmp) / f"{args.kind}.yaml")
        conn = _connect(args, check_floor=True)
        with conn.errors(), contextlib.redirect_stdout(sys.stderr):
            result = upsert_recurring_run(
                conn.client,
                name=args.name,
                package_path=str(path),
                params=arguments,
                cron=args.cron,
                experiment=args.experiment or DEFAULT_EXPERIMENT,
                max_concurrency=args.max_concurrency,
                namespace=conn.namespace,
                description=f"model-adapter {args.kind} of {args.model} ({args.adapter})",
            )
    extra = f", replaced {', '.join(result.replaced)}" if result.replaced else ""
    print(f"{result.action} recurring run {result.name} ({result.recurring_run_id}): cron {result.cron!r}, max concurrency {result.max_concurrency}{extra}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from .remote import list_runs, run_url

    conn = _connect(args, check_floor=False)
    with conn.errors(), contextlib.redirect_stdout(sys.stderr):
        runs = list_runs(conn.client, experiment=args.experiment or None, namespace=conn.namespace, limit=args.limit)
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    if not runs:
        print("no runs")
        return 0
    width = max(len(r["name"] or "") for r in runs)
    for r in runs:
        print(f"{r['run_id']}  {r['state']:<10}  {r['created_at']:<20}  {(r['name'] or ''):<{width}}  {run_url(args.ui_url or args.host, r['run_id'])}")
    return 0


# --- registration -----------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``pipeline`` and its subcommands to the ``model-adapter`` parser."""
    pipeline = sub.add_parser(
        "pipeline",
        help="compile, run locally, submit and schedule the KFP pipelines",
        description="The KFP v2 pipelines: train (load -> train -> commit -> evaluate -> gated promotion) and "
        "predict (split_dataset -> predict_shard per shard -> merge_reports). Run them under kfp.local, or compile and submit them to a cluster.",
    )
    actions = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="ACTION")

    compile_p = actions.add_parser("compile", help="compile a pipeline to a YAML file for KFP", description="Compile a pipeline to KFP YAML.")
    for kind, p in kind_parsers(compile_p, "Compile").items():
        p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the YAML")
        _build_options(p, kind, default_profile="gpu")
        p.set_defaults(func=cmd_compile)

    run_p = actions.add_parser("run", help="run a pipeline under kfp.local in this environment", description="Run a pipeline under kfp.local (SubprocessRunner, this Python environment).")
    for kind, p in kind_parsers(run_p, "Run").items():
        p.add_argument("--local", action="store_true", required=True, help="run under kfp.local (required: use `submit` for a cluster)")
        p.add_argument("--pipeline-root", default=None, metavar="DIR", help="local directory for step outputs (default: $MODEL_ADAPTER_HOME/kfp-local)")
        p.add_argument(
            "--runner",
            choices=("subprocess", "docker"),
            default="subprocess",
            help="subprocess (default): every step in this Python environment; docker: every step in its own container of --image, "
            "through Docker or, where no Docker engine answers, podman (test your image locally before you push it)",
        )
        p.add_argument("--engine", choices=("docker", "podman"), default=None, help="container engine for --runner docker (default: docker if it answers, else podman)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument(
            "--quiet",
            action="store_true",
            help="hold back the step logs (hundreds of lines): print only the result and one line per failed item "
            f"(the logs' last {QUIET_TAIL_LINES} lines are shown if the run fails)",
        )
        param_options(p, kind)
        _build_options(p, kind, default_profile="cpu")
        # Ctrl-C: a predict run resumes with --resume; a train run, run again, resumes from its checkpoints
        p.set_defaults(func=cmd_run, resume_flag="--resume" if kind == "predict" else "")

    submit_p = actions.add_parser(
        "submit",
        help="compile a pipeline and start a run on a KFP API",
        description=f"Compile a pipeline and create a run on a KFP API; prints the run id and its URL. {BACKEND_FLOOR_HELP}",
    )
    for kind, p in kind_parsers(submit_p, "Submit").items():
        p.description = f"{p.description} {BACKEND_FLOOR_HELP}"
        _remote_options(p)
        param_options(p, kind)
        _build_options(p, kind, default_profile="gpu")
        p.add_argument("--run-name", default=None, help="run name (default: <pipeline>-<model>-<UTC time>)")
        p.add_argument("--pipeline-root", default=None, help="KFP pipeline root for step outputs (default: the cluster's)")
        p.add_argument(
            "--skip-if-active",
            action="store_true",
            help="create nothing (exit 0, saying so) while a run of this pipeline on this --model is still active in the experiment "
            "(a CronJob's Forbid policy only covers the seconds the submission takes)",
        )
        p.add_argument(
            "--skip-if-exists",
            action="store_true",
            help="create nothing (exit 0, saying so) when a run named --run-name exists in the experiment: a retried submitter "
            "whose create was answered but not heard makes no second run (the CronJobs name the run after the scheduled tick)",
        )
        p.add_argument("--wait", action="store_true", help="wait for the run to finish; exit 1 unless it succeeded")
        p.add_argument("--timeout", type=float, default=24 * 3600, help="seconds to --wait (default: 86400)")
        p.set_defaults(func=cmd_submit)

    schedule_p = actions.add_parser(
        "schedule",
        help="create or update a KFP recurring run by name (never duplicated)",
        description="Create a KFP recurring run, or replace the one with the same --name. Cron: 5 fields "
        "(minute first) or KFP's 6 (seconds first).",
    )
    for kind, p in kind_parsers(schedule_p, "Schedule").items():
        p.add_argument("--cron", required=True, metavar="EXPR", help='cron expression, e.g. "0 3 * * *" (UTC)')
        p.add_argument("--name", required=True, help="recurring run name: the one with this name is replaced")
        p.add_argument("--max-concurrency", type=int, default=1, help="runs of this schedule at once (default: 1)")
        _remote_options(p)
        param_options(p, kind)
        _build_options(p, kind, default_profile="gpu")
        p.set_defaults(func=cmd_schedule)

    runs_p = actions.add_parser("runs", help="list the latest runs on a KFP API", description="List the latest runs, newest first.")
    _remote_options(runs_p)
    runs_p.add_argument("--limit", type=int, default=20, help="how many (default: 20)")
    runs_p.add_argument("--json", action="store_true", help="print JSON")
    runs_p.set_defaults(func=cmd_runs)

