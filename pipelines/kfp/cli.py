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
import collections
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from adapter_base.cli._common import add_config_option
from adapter_base.errors import ValidationError

from ..compute import PROFILES, get_profile
from ..image_ref import chosen_image
from ..steps import KIND_HELP, PIPELINE_KINDS
from .remote import BACKEND_FLOOR_HELP, MIN_BACKEND, SA_TOKEN_ENV, SA_TOKEN_PATH, TOKEN_ENV

IMAGE_HELP = "project image the steps run on, or one built FROM it with your adapter (default: $MODEL_ADAPTER_IMAGE, else model-adapter:dev)"
PROFILE_HELP = f"compute profile of the heavy steps: {', '.join(PROFILES)}"


# --- options ----------------------------------------------------------------------------


def _build_options(p: argparse.ArgumentParser, kind: str, default_profile: str) -> None:
    """Options that shape the compiled pipeline (not its run-time parameters)."""
    p.add_argument("--image", default=None, help=IMAGE_HELP)
    p.add_argument("--profile", default=default_profile, help=f"{PROFILE_HELP} (default: {default_profile})")
    if kind == "predict":
        p.add_argument("--parallelism", type=int, default=None, help="at most this many shards at once (default: 8)")
        p.add_argument("--retries", type=int, default=None, help="retries of a failed shard, with exponential backoff (default: 3)")


def _param_options(p: argparse.ArgumentParser, kind: str) -> None:
    """The pipeline's run-time parameters."""
    p.add_argument("--adapter", required=True, help="adapter import path, package.module:Class (must be importable in the image)")
    p.add_argument("--model", required=True, help="model name or id")
    p.add_argument(
        "--dataset",
        required=kind == "predict",
        default="",
        help="dataset name or id" + (" (default: the model's dataset)" if kind == "train" else ""),
    )
    p.add_argument(
        "--store",
        default="",
        help="store URI, s3://bucket/prefix or a path (not secret; default: $MODEL_ADAPTER_STORE where the step runs)",
    )
    add_config_option(p, "adapter configuration override")
    p.add_argument("--batch-size", type=int, default=0, help="prediction batch size (default: the adapter's)")
    if kind == "train":
        p.add_argument("--test-subset", default="test", help="evaluate on items of this subset (default: test)")
        p.add_argument("--test-filters", default=None, metavar="JSON", help='evaluation filters as JSON, e.g. \'{"subset": "test"}\' (overrides --test-subset)')
        p.add_argument("--metric", default="accuracy", help="metric of the promotion gate: accuracy, macro_f1, macro.f1, map, ... (default: accuracy)")
        p.add_argument("--threshold", type=float, default=0.9, help="promote when the metric is >= this (default: 0.9)")
        p.add_argument("--alias", default="production", help="alias to promote (default: production)")
    else:
        p.add_argument("--shards", type=int, default=4, help="number of shards (default: 4)")
        p.add_argument("--subset", default=None, help="only items of this subset")
        p.add_argument("--path-prefix", default=None, help="only items under this path")
        p.add_argument("--filters", default=None, metavar="JSON", help='item filters as JSON, e.g. \'{"metadata": {"camera": "a"}}\'')
        p.add_argument("--resume", action="store_true", help="skip items this model version already predicted")
        p.add_argument("--alias", default="", help="predict with the version this alias points at, e.g. production (default: the current version)")


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


def _json_dict(text: str | None, what: str) -> dict[str, Any] | None:
    if text is None or text == "":
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("pipeline", what, f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError("pipeline", what, f"expected a JSON object, got {type(value).__name__}")
    return value


def pipeline_arguments(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline parameters from parsed options."""
    from adapter_base.cli._common import item_filters, parse_key_values
    from adapter_base.storage import check_store_uri

    out: dict[str, Any] = {
        "adapter": args.adapter,
        "model": args.model,
        "dataset": args.dataset or "",
        "store_uri": check_store_uri(args.store or ""),
        "configuration": parse_key_values(args.config, "--config"),
        "batch_size": int(args.batch_size or 0),
    }
    if kind == "train":
        test_filters = _json_dict(args.test_filters, "--test-filters")
        out.update(
            test_filters=test_filters if test_filters is not None else {"subset": args.test_subset},
            metric=args.metric,
            threshold=float(args.threshold),
            alias=args.alias,
        )
    else:
        if args.shards < 1:
            raise ValidationError("pipeline", "--shards", f"must be >= 1, got {args.shards}")
        filters = {**(_json_dict(args.filters, "--filters") or {}), **item_filters(args)}
        out.update(filters=filters, num_shards=int(args.shards), resume=bool(args.resume), alias=args.alias or "")
    return out


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


class LogTail(io.TextIOBase):
    """A text stream that keeps only its last ``lines`` lines (the step logs ``--quiet`` holds back)."""

    def __init__(self, lines: int) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *done, self._partial = (self._partial + text).split("\n")
        self.lines.extend(done)
        return len(text)

    def tail(self) -> list[str]:
        """The last lines written (the unfinished one too)."""
        return [*self.lines, *([self._partial] if self._partial else [])]


QUIET_TAIL_LINES = 40


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


def cmd_submit(args: argparse.Namespace) -> int:
    from .remote import DEFAULT_EXPERIMENT, run_name, submit_run, wait_for_run

    arguments = pipeline_arguments(args.kind, args)
    with tempfile.TemporaryDirectory(prefix="model-adapter-submit-") as tmp:
        path = _compile_to(args.kind, args, Path(tmp) / f"{args.kind}.yaml")
        conn = _connect(args, check_floor=True)
        # kfp.Client prints experiment and run links: keep stdout for the result.
        with conn.errors(), contextlib.redirect_stdout(sys.stderr):
            result = submit_run(
                conn.client,
                str(path),
                arguments,
                host=args.ui_url or args.host,
                run_name=args.run_name or run_name(args.kind, args.model),
                experiment=args.experiment or DEFAULT_EXPERIMENT,
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

    def kinds(parent: argparse.ArgumentParser, action: str) -> dict[str, argparse.ArgumentParser]:
        ksub = parent.add_subparsers(dest="kind", required=True, metavar="PIPELINE")
        return {kind: ksub.add_parser(kind, help=KIND_HELP[kind], description=f"{action} the {kind} pipeline: {KIND_HELP[kind]}.") for kind in PIPELINE_KINDS}

    compile_p = actions.add_parser("compile", help="compile a pipeline to a YAML file for KFP", description="Compile a pipeline to KFP YAML.")
    for kind, p in kinds(compile_p, "Compile").items():
        p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the YAML")
        _build_options(p, kind, default_profile="gpu")
        p.set_defaults(func=cmd_compile)

    run_p = actions.add_parser("run", help="run a pipeline under kfp.local in this environment", description="Run a pipeline under kfp.local (SubprocessRunner, this Python environment).")
    for kind, p in kinds(run_p, "Run").items():
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
        _param_options(p, kind)
        _build_options(p, kind, default_profile="cpu")
        # Ctrl-C: a predict run resumes with --resume; a train run, run again, resumes from its checkpoints
        p.set_defaults(func=cmd_run, resume_flag="--resume" if kind == "predict" else "")

    submit_p = actions.add_parser(
        "submit",
        help="compile a pipeline and start a run on a KFP API",
        description=f"Compile a pipeline and create a run on a KFP API; prints the run id and its URL. {BACKEND_FLOOR_HELP}",
    )
    for kind, p in kinds(submit_p, "Submit").items():
        p.description = f"{p.description} {BACKEND_FLOOR_HELP}"
        _remote_options(p)
        _param_options(p, kind)
        _build_options(p, kind, default_profile="gpu")
        p.add_argument("--run-name", default=None, help="run name (default: <pipeline>-<model>-<UTC time>)")
        p.add_argument("--pipeline-root", default=None, help="KFP pipeline root for step outputs (default: the cluster's)")
        p.add_argument("--wait", action="store_true", help="wait for the run to finish; exit 1 unless it succeeded")
        p.add_argument("--timeout", type=float, default=24 * 3600, help="seconds to --wait (default: 86400)")
        p.set_defaults(func=cmd_submit)

    schedule_p = actions.add_parser(
        "schedule",
        help="create or update a KFP recurring run by name (never duplicated)",
        description="Create a KFP recurring run, or replace the one with the same --name. Cron: 5 fields "
        "(minute first) or KFP's 6 (seconds first).",
    )
    for kind, p in kinds(schedule_p, "Schedule").items():
        p.add_argument("--cron", required=True, metavar="EXPR", help='cron expression, e.g. "0 3 * * *" (UTC)')
        p.add_argument("--name", required=True, help="recurring run name: the one with this name is replaced")
        p.add_argument("--max-concurrency", type=int, default=1, help="runs of this schedule at once (default: 1)")
        _remote_options(p)
        _param_options(p, kind)
        _build_options(p, kind, default_profile="gpu")
        p.set_defaults(func=cmd_schedule)

    runs_p = actions.add_parser("runs", help="list the latest runs on a KFP API", description="List the latest runs, newest first.")
    _remote_options(runs_p)
    runs_p.add_argument("--limit", type=int, default=20, help="how many (default: 20)")
    runs_p.add_argument("--json", action="store_true", help="print JSON")
    runs_p.set_defaults(func=cmd_runs)

