"""``model-adapter step NAME ...``: run one pipeline step in this process, as a container command.

The same ``adapter_base.steps`` function the KFP component of that name calls, with its
inputs as options (JSON for objects and model references) and each output written to the
file of its ``--output-<name> PATH`` option (JSON, or text for reports), which is how an
Argo Workflows step hands its outputs on (``outputs.parameters[].valueFrom.path``)::

    model-adapter step load --adapter pkg.mod:Class --model m --run-id r --output-base-model /tmp/outputs/base-model
    model-adapter step train --adapter pkg.mod:Class --base-model "$(cat /tmp/outputs/base-model)" --run-id r ...

A failing step exits 1 with one line on stderr, after the step function recorded the failure
on the model where it does so (train steps).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import ValidationError
from ..metrics import finite_numbers
from ..registry import Registry, layout
from ..sharding import summary_markdown
from ..steps.artifact_io import write_json
from ..steps.commit import commit
from ..steps.evaluate import evaluate
from ..steps.finalize import finalize
from ..steps.load import load
from ..steps.merge_reports import merge_reports
from ..steps.model_ref import ModelRef
from ..steps.predict_shard import predict_shard
from ..steps.promote import promote
from ..steps.shared import configure_step_logging
from ..steps.split_dataset import split_dataset
from ..steps.train import train

#: How a value is given on the command line.
TEXT, JSON_OBJECT, JSON_LIST, REF, INT, FLOAT, BOOL = "text", "object", "list", "ref", "int", "float", "bool"


@dataclass(frozen=True)
class Input:
    """One input of a step: ``--<name>`` (``_`` spelled ``-``)."""

    name: str
    kind: str = TEXT
    default: Any = None
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Output:
    """One output of a step, written to the file of ``--output-<name>``: JSON, or ``text`` as it is."""

    name: str
    help: str
    text: bool = False


@dataclass(frozen=True)
class Step:
    """A pipeline step as a command: its inputs, its outputs and what runs it."""

    name: str
    help: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    run: Callable[[Mapping[str, Any]], dict[str, Any]] = field(repr=False)


def _parse(kind: str, text: str, option: str) -> Any:
    """``text`` of ``option`` as a value of ``kind``; a bad one is a ValidationError naming the option."""
    try:
        if kind == TEXT:
            return text
        if kind == INT:
            return int(text)
        if kind == FLOAT:
            return float(text)
        if kind == BOOL:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            return lowered in ("true", "1")
        value = json.loads(text) if text.strip() else ({} if kind == JSON_OBJECT else None)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValidationError("step", option, f"{text[:80]!r}: {exc}") from None
    if kind in (JSON_OBJECT, REF) and not isinstance(value, dict):
        raise ValidationError("step", option, f"expected a JSON object, got {type(value).__name__}")
    if kind == JSON_LIST and not isinstance(value, list):
        raise ValidationError("step", option, f"expected a JSON list, got {type(value).__name__}")
    if kind == REF:

        try:
            return ModelRef.from_dict(value)
        except ValidationError as exc:
            raise ValidationError("step", option, str(exc)) from None
    return value


def _write(path: str, value: Any, text: bool) -> None:

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if text:
        Path(path).write_text(str(value))
    else:
        write_json(path, value)


# --- the steps ----------------------------------------------------------------------------

ADAPTER = Input("adapter", help="adapter import path, package.module:Class")
STORE = Input("store_uri", default="", help="store URI (default: $MODEL_ADAPTER_STORE)")
CONFIG = Input("configuration", JSON_OBJECT, default={}, help="adapter configuration overrides as a JSON object")
RUN_ID = Input("run_id", help="the pipeline run's id")
BATCH = Input("batch_size", INT, default=0, help="prediction batch size (0: the adapter's)")


def _load(a: Mapping[str, Any]) -> dict[str, Any]:

    ref = load(
        a["adapter"], a["model"], store_uri=a["store_uri"], configuration=a["configuration"], run_id=a["run_id"],
        record_failures=a["record_failures"], alias=a["alias"], dataset=a["dataset"], test_filters=a["test_filters"],
        metric=a["metric"], threshold=a["threshold"],
    )
    return {"base_model": ref.to_dict()}


def _train(a: Mapping[str, Any]) -> dict[str, Any]:

    staged = train(a["adapter"], a["base_model"], a["run_id"], dataset=a["dataset"], store_uri=a["store_uri"], configuration=a["configuration"])
    return {"staged_model": staged.ref.to_dict(), "training_metrics": finite_numbers(staged.training)}


def _commit(a: Mapping[str, Any]) -> dict[str, Any]:

    return {"trained_model": commit(a["staged_model"], store_uri=a["store_uri"]).to_dict()}


def _evaluate(a: Mapping[str, Any]) -> dict[str, Any]:

    ref = a["trained_model"]
    out = evaluate(
        a["adapter"], ref, a["run_id"], dataset=a["dataset"], filters=a["filters"], metric=a["metric"], threshold=a["threshold"],
        store_uri=a["store_uri"], configuration=a["configuration"], batch_size=a["batch_size"],
    )
    return {
        "promote": "true" if out.promote else "false",
        "metrics": out.scalars,
        "report": out.result.report_html,
        "summary": f"## {ref.model_name} v{ref.version}: {out.reason}\n\n{out.result.report_markdown}",
    }


def _promote(a: Mapping[str, Any]) -> dict[str, Any]:

    return {"aliases": promote(a["trained_model"], a["alias"], store_uri=a["store_uri"], run_id=a["run_id"])}


def _finalize(a: Mapping[str, Any]) -> dict[str, Any]:

    print(finalize(a["model"], a["run_id"], a["state"], a["error_message"] or None, store_uri=a["store_uri"]))
    return {}


def _split_dataset(a: Mapping[str, Any]) -> dict[str, Any]:

    index = split_dataset(a["dataset"], a["num_shards"], a["run_id"], filters=a["filters"], store_uri=a["store_uri"])
    return {"shards": index, "shard_numbers": [s["shard"] for s in index["shards"]]}


def _predict_shard(a: Mapping[str, Any]) -> dict[str, Any]:

    out = predict_shard(
        a["adapter"], a["base_model"], a["shards"], a["shard"], store_uri=a["store_uri"], configuration=a["configuration"],
        batch_size=a["batch_size"], resume=a["resume"],
    )
    keys = ("shard", "attempt", "total", "succeeded", "skipped", "failed", "duration_s", "items_per_second")
    return {"report": {k: out[k] for k in keys if k in out}}


def _merge_reports(a: Mapping[str, Any]) -> dict[str, Any]:

    index = a["shards"]
    run_id = index["run_id"]
    # each shard's full report (every failed item) is in the store: outputs passed as parameters stay small
    with Registry.open(a["store_uri"] or None) as registry:
        reports = [registry.store.get_json(layout.shard_report(run_id, s["shard"])) for s in index["shards"]]
    merged = merge_reports(reports, run_id, store_uri=a["store_uri"])
    print(
        f"prediction run {run_id}: {merged['succeeded']} predicted, {merged['skipped']} already done, "
        f"{merged['failed']} failed of {merged['total']} in {merged['shards']} shard(s)"
    )
    return {"summary": merged, "summary_markdown": summary_markdown(merged)}


FILTERS = Input("filters", JSON_OBJECT, default={}, help="item filters as a JSON object")
STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step(
            "load",
            "resolve a model version and load it with the adapter; output its reference",
            (
                ADAPTER, Input("model", help="model name or id"), STORE, CONFIG, RUN_ID,
                Input("record_failures", BOOL, default=True, help="mark the model failed when the step fails (train runs)"),
                Input("alias", default="", help="load the version this alias points at (default: the current one)"),
                Input("dataset", default="", help="the run's dataset, checked before any work"),
                Input("test_filters", JSON_OBJECT, default={}, help="the run's evaluation filters, checked before any work"),
                Input("metric", default="", help="the run's promotion metric, checked before any work"),
                Input("threshold", FLOAT, default=0.0, help="the run's promotion threshold"),
            ),
            (Output("base_model", "the loaded version's reference (JSON)"),),
            _load,
        ),
        Step(
            "train",
            "train from the loaded version and stage the result under the run id",
            (ADAPTER, Input("base_model", REF, help="reference the load step wrote"), Input("dataset", default=""), STORE, CONFIG, RUN_ID),
            (Output("staged_model", "the staged result's reference (JSON)"), Output("training_metrics", "the last epoch's finite metrics (JSON)")),
            _train,
        ),
        Step(
            "commit",
            "make the staged result the model's next version",
            (Input("staged_model", REF, help="reference the train step wrote"), STORE),
            (Output("trained_model", "the new version's reference (JSON)"),),
            _commit,
        ),
        Step(
            "evaluate",
            "evaluate the committed version and decide whether to promote it",
            (
                ADAPTER, Input("trained_model", REF, help="reference the commit step wrote"), Input("dataset", default=""), FILTERS,
                Input("metric", default="accuracy"), Input("threshold", FLOAT, default=0.9), STORE, CONFIG, BATCH, RUN_ID,
            ),
            (
                Output("promote", "true when the metric reached the threshold, else false", text=True),
                Output("metrics", "the finite scalar metrics (JSON)"),
                Output("report", "the HTML report", text=True),
                Output("summary", "the decision and the metrics in Markdown", text=True),
            ),
            _evaluate,
        ),
        Step(
            "promote",
            "point an alias at the committed version",
            (Input("trained_model", REF), Input("alias", default="production"), STORE, RUN_ID),
            (Output("aliases", "the model's aliases after the step (JSON)"),),
            _promote,
        ),
        Step(
            "finalize",
            "the train run's exit step: a run that did not succeed leaves the model failed",
            (
                Input("model", help="model name or id"), STORE, RUN_ID,
                Input("state", default="", help="the run's final state (Succeeded, Failed, Error; KFP's COMPLETE, FAILED, ...)"),
                Input("error_message", default="", help="what failed, for the model's status message"),
            ),
            (),
            _finalize,
        ),
        Step(
            "split_dataset",
            "list the matching items once and write one manifest per shard to the store",
            (Input("dataset", help="dataset name or id"), FILTERS, Input("num_shards", INT, default=4), STORE, RUN_ID),
            (Output("shards", "the shard index (JSON: keys and counts)"), Output("shard_numbers", "the shard numbers (a JSON list, for a fan-out)")),
            _split_dataset,
        ),
        Step(
            "predict_shard",
            "predict one shard's items (its full report goes to the store)",
            (
                ADAPTER, Input("base_model", REF), Input("shards", JSON_OBJECT, help="the shard index split_dataset wrote"),
                Input("shard", INT, help="shard number"), STORE, CONFIG, BATCH,
                Input("resume", BOOL, default=False, help="skip items this model version already predicted"),
            ),
            (Output("report", "the shard's counts (JSON; the failed items are in the store's report)"),),
            _predict_shard,
        ),
        Step(
            "merge_reports",
            "merge the shard reports from the store into one summary",
            (Input("shards", JSON_OBJECT, help="the shard index split_dataset wrote"), STORE),
            (Output("summary", "the merged summary (JSON)"), Output("summary_markdown", "the summary in Markdown", text=True)),
            _merge_reports,
        ),
    )
}


def option(name: str) -> str:
    """The command-line spelling of input or output ``name``."""
    return "--" + name.replace("_", "-")


def output_option(name: str) -> str:
    return "--output-" + name.replace("_", "-")


def cmd_step(args: argparse.Namespace) -> int:

    step = STEPS[args.step]
    values = {}
    for inp in step.inputs:
        raw = getattr(args, inp.name)
        values[inp.name] = inp.default if raw is None else _parse(inp.kind, raw, option(inp.name))
    configure_step_logging()
    results = step.run(values)
    for out in step.outputs:
        path = getattr(args, f"output_{out.name}")
        if path:
            _write(path, results[out.name], out.text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``step`` and one subcommand per pipeline step."""
    p = sub.add_parser(
        "step",
        help="run one pipeline step (what a workflow's container runs)",
        description="Run one pipeline step: the function its KFP component calls, inputs as options, "
        "each output written to the file of --output-NAME (JSON, or text for reports).",
    )
    steps = p.add_subparsers(dest="step", required=True, metavar="NAME")
    for step in STEPS.values():
        sp = steps.add_parser(step.name, help=step.help, description=f"{step.name}: {step.help}.", allow_abbrev=False)
        for inp in step.inputs:
            default = "" if inp.required or "default" in inp.help else f" (default: {json.dumps(inp.default) if inp.kind != TEXT else repr(inp.default)})"
            kind = {JSON_OBJECT: "JSON", JSON_LIST: "JSON", REF: "JSON", INT: "N", FLOAT: "X", BOOL: "true|false"}.get(inp.kind)
            sp.add_argument(option(inp.name), dest=inp.name, required=inp.required, metavar=kind, help=(inp.help or inp.name.replace("_", " ")) + default)
        for out in step.outputs:
            sp.add_argument(output_option(out.name), dest=f"output_{out.name}", metavar="PATH", help=f"write {out.help} to PATH")
        sp.set_defaults(func=cmd_step)
