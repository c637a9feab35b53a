"""Running a rendered WorkflowTemplate here, step by step, to prove the YAML we hand a cluster works.

This is a check of the rendered spec, not an Argo engine: it reads the same dict ``argo
compile`` writes and runs each container's exact command and args (with the template
variables filled in) as a subprocess of this environment, in dependency order
(``depends``), with ``withParam`` fan-outs (at most the DAG's ``parallelism`` at once),
``when`` conditions, each template's ``retryStrategy`` (a failed command is a failure: retried under ``Always`` and
``OnFailure``, not ``OnError``; no backoff wait) and the
``onExit`` handler fed ``{{workflow.status}}``. The store's ConfigMap and Secret are this
process's environment variables. What it does not do: scheduling, resources, pod
placement, deadlines, artifact repositories, or any expression beyond ``A == B`` / ``A != B``
and ``depends`` of the form ``a && b``; a spec that needs more is an error naming it.

Each step writes its outputs where its args say; a path under the container's outputs
directory is moved to a directory of that step's own here (steps run side by side).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from adapter_base.errors import AdapterError

from .settings import OUTPUTS_DIR

_VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_WHEN = re.compile(r"^\s*(.*?)\s*(==|!=)\s*(.*?)\s*$")


class WorkflowRunError(AdapterError):
    """A local run of a rendered workflow failed; ``status`` is the workflow status, ``failed`` the failed step."""

    def __init__(self, message: str, status: str = "Failed", failed: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.failed = failed


class SpecError(WorkflowRunError):
    """The rendered spec asks for something this local check does not do, or does not resolve."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status="Error")


@dataclass
class NodeResult:
    """One run of a task (one item of a fan-out)."""

    name: str
    phase: str  # Succeeded, Failed, Skipped, Omitted
    outputs: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    seconds: float = 0.0


@dataclass
class WorkflowRunResult:
    """What a local run did: the workflow status and uid, every node, the exit handler's node."""

    status: str
    uid: str
    nodes: dict[str, list[NodeResult]]
    exit_node: NodeResult | None
    seconds: float

    def outputs(self, task: str) -> dict[str, str]:
        """The outputs of ``task`` (its last node)."""
        return self.nodes[task][-1].outputs


def _substitute(text: str, scope: Mapping[str, str], what: str) -> str:
    def repl(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in scope:
            raise SpecError(f"{what}: {{{{{key}}}}} does not resolve (known here: {', '.join(sorted(scope)) or 'nothing'})")
        return scope[key]

    return _VAR.sub(repl, text)


def _when(expr: str, scope: Mapping[str, str], task: str) -> bool:
    text = _substitute(expr, scope, f"task {task} when")
    match = _WHEN.match(text)
    if not match:
        raise SpecError(f"task {task}: when {expr!r} is not A == B or A != B, which is all the local check evaluates")
    left, op, right = (s.strip().strip("'\"") for s in match.groups())
    return (left == right) if op == "==" else (left != right)


def _depends(task: Mapping[str, Any]) -> list[str]:
    expr = (task.get("depends") or "").strip()
    if not expr:
        return list(task.get("dependencies") or [])
    names = [s.strip() for s in expr.split("&&")]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9-]+", name):
            raise SpecError(f"task {task['name']}: depends {expr!r}: only 'a && b' of task names is checked locally")
    return names


def _executable(command: list[str]) -> list[str]:
    """``command`` with its program found in this environment (the console script beside this Python first)."""
    program = command[0]
    beside = Path(sys.executable).parent / program
    found = str(beside) if beside.exists() else shutil.which(program)
    if not found:
        raise SpecError(f"the containers' command {program!r} is not installed here")
    return [found, *command[1:]]


class LocalWorkflow:
    """One local run of a rendered Workflow(Template) dict with the given parameter values."""

    def __init__(self, doc: Mapping[str, Any], parameters: Mapping[str, str], *, workdir: Path, log: Any = None) -> None:
        spec = doc["spec"]
        self.templates = {t["name"]: t for t in spec["templates"]}
        self.entrypoint = spec["entrypoint"]
        self.on_exit = spec.get("onExit")
        self.uid = str(uuid.uuid4())
        declared = {p["name"]: p.get("value") for p in spec.get("arguments", {}).get("parameters", [])}
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise SpecError(f"parameter(s) {', '.join(unknown)} are not declared by the workflow (declared: {', '.join(declared)})")
        values = {**declared, **parameters}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise SpecError(f"workflow parameter(s) {', '.join(missing)} need a value")
        self.globals = {f"workflow.parameters.{k}": str(v) for k, v in values.items()}
        self.globals["workflow.uid"] = self.uid
        self.workdir = workdir
        self.log = log or sys.stderr
        self._lock = threading.Lock()

    # --- one container ------------------------------------------------------------------

    def _run_container(self, template: Mapping[str, Any], node: str, scope: Mapping[str, str]) -> NodeResult:
        container = template.get("container")
        if container is None:
            raise SpecError(f"template {template['name']}: only container and dag templates are run locally")
        outdir = self.workdir / re.sub(r"[^A-Za-z0-9_.-]", "_", node)
        outdir.mkdir(parents=True, exist_ok=True)
        what = f"template {template['name']}"
        args = [_substitute(a, scope, what) for a in container.get("args", [])]
        args = [str(outdir / a[len(OUTPUTS_DIR) + 1 :]) if a.startswith(OUTPUTS_DIR + "/") else a for a in args]
        command = _executable([_substitute(c, scope, what) for c in container["command"]])
        env = {**os.environ, **{e["name"]: _substitute(str(e.get("value", "")), scope, what) for e in container.get("env", [])}}
        retry = template.get("retryStrategy") or {}
        # a non-zero exit here is what Argo calls a failure (not an error): OnError and OnTransientError never retry it
        retries_failures = retry.get("retryPolicy", "OnFailure") in ("Always", "OnFailure")
        limit = int(str(retry.get("limit", 0))) if retry and retries_failures else 0
        start = time.monotonic()
        for attempt in range(1, limit + 2):
            with self._lock:
                print(f">> {node}: {' '.join(command[1:3])} (attempt {attempt})", file=self.log, flush=True)
            if self._run_logged([*command, *args], env) == 0:
                break
        else:
            return NodeResult(node, "Failed", attempts=limit + 1, seconds=time.monotonic() - start)
        outputs = {}
        for out in (template.get("outputs") or {}).get("parameters", []):
            path = out["valueFrom"]["path"]
            local = outdir / path[len(OUTPUTS_DIR) + 1 :] if path.startswith(OUTPUTS_DIR + "/") else Path(path)
            if not local.exists():
                return NodeResult(node, "Failed", attempts=attempt, seconds=time.monotonic() - start)
            outputs[out["name"]] = local.read_text()
        return NodeResult(node, "Succeeded", outputs, attempts=attempt, seconds=time.monotonic() - start)

    def _run_logged(self, argv: list[str], env: Mapping[str, str]) -> int:
        """Run ``argv``; its output goes to the log line by line (steps side by side do not mix within a line)."""
        with subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                with self._lock:
                    self.log.write(line)
                    self.log.flush()
            return proc.wait()

    def _invoke(self, template_name: str, node: str, arguments: Mapping[str, str], extra: Mapping[str, str]) -> NodeResult:
        template = self.templates.get(template_name)
        if template is None:
            raise SpecError(f"node {node}: no template named {template_name!r}")
        scope = dict(self.globals)
        scope.update(extra)
        declared = [p["name"] for p in (template.get("inputs") or {}).get("parameters", [])]
        for name in declared:
            if name not in arguments:
                raise SpecError(f"node {node}: input {name!r} of template {template_name} is not passed")
            scope[f"inputs.parameters.{name}"] = arguments[name]
        return self._run_container(template, node, scope)

    # --- a DAG --------------------------------------------------------------------------

    def _run_dag(self, template: Mapping[str, Any]) -> dict[str, list[NodeResult]]:
        tasks = {t["name"]: t for t in template["dag"]["tasks"]}
        deps = {name: _depends(t) for name, t in tasks.items()}
        for name, needs in deps.items():
            for need in needs:
                if need not in tasks:
                    raise SpecError(f"task {name} depends on {need!r}, which is not a task")
        parallelism = int(template.get("parallelism") or 0) or 64
        done: dict[str, list[NodeResult]] = {}
        scope = dict(self.globals)
        pending = list(tasks)
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            while pending:
                ready = [n for n in pending if all(d in done for d in deps[n])]
                if not ready:
                    raise SpecError(f"tasks {', '.join(pending)} wait on each other")
                for name in ready:
                    pending.remove(name)
                    task = tasks[name]
                    if any(r.phase != "Succeeded" for d in deps[name] for r in done[d]):
                        done[name] = [NodeResult(name, "Omitted")]
                        continue
                    if task.get("when") and not _when(task["when"], scope, name):
                        print(f">> {name}: skipped (when {_substitute(task['when'], scope, name)})", file=self.log, flush=True)
                        done[name] = [NodeResult(name, "Skipped")]
                        continue
                    args_of = {p["name"]: p.get("value", "") for p in (task.get("arguments") or {}).get("parameters", [])}
                    if "withParam" in task:
                        raw = _substitute(task["withParam"], scope, f"task {name} withParam")
                        try:
                            items = json.loads(raw)
                        except json.JSONDecodeError as exc:
                            raise SpecError(f"task {name}: withParam {raw[:80]!r} is not a JSON list: {exc}") from None
                        if not isinstance(items, list):
                            raise SpecError(f"task {name}: withParam is not a JSON list: {raw[:80]!r}")
                    else:
                        items = [None]

                    def one(item: Any, index: int, name: str = name, task: Mapping[str, Any] = task, args_of: dict = args_of) -> NodeResult:
                        extra = {} if item is None else {"item": item if isinstance(item, str) else json.dumps(item)}
                        local = {**scope, **extra}
                        arguments = {k: _substitute(str(v), local, f"task {name} argument {k}") for k, v in args_of.items()}
                        node = name if item is None else f"{name}({index}:{extra['item']})"
                        return self._invoke(task["template"], node, arguments, extra)

                    results = list(pool.map(lambda pair: one(*pair), [(item, i) for i, item in enumerate(items)]))
                    # a fan-out with no items succeeds with no nodes; its outputs are then empty lists
                    done[name] = results or [NodeResult(name, "Succeeded")]
                    if all(r.phase == "Succeeded" for r in results):
                        names = (self.templates[task["template"]].get("outputs") or {}).get("parameters", [])
                        for out in (p["name"] for p in names):
                            key = f"tasks.{name}.outputs.parameters.{out}"
                            scope[key] = json.dumps([r.outputs[out] for r in results]) if "withParam" in task else results[0].outputs[out]
        return done

    def run(self) -> WorkflowRunResult:
        """Run the entrypoint DAG, then the exit handler; a failed run raises ``WorkflowRunError`` after the exit handler ran."""
        start = time.monotonic()
        entry = self.templates[self.entrypoint]
        if "dag" not in entry:
            raise SpecError(f"the entrypoint {self.entrypoint} is not a dag template")
        nodes = self._run_dag(entry)
        failed = [r.name for results in nodes.values() for r in results if r.phase == "Failed"]
        status = "Failed" if failed else "Succeeded"
        exit_node = None
        if self.on_exit:
            exit_node = self._invoke(self.on_exit, "onExit", {}, {"workflow.status": status})
        result = WorkflowRunResult(status, self.uid, nodes, exit_node, time.monotonic() - start)
        if failed:
            raise WorkflowRunError(f"workflow {status.lower()}: step {failed[0]} failed (its log is above)", status, failed[0])
        if exit_node is not None and exit_node.phase != "Succeeded":
            raise WorkflowRunError("the exit handler failed (its log is above)", "Failed", "onExit")
        return result


def run_workflow(doc: Mapping[str, Any], parameters: Mapping[str, str], *, log: Any = None, workdir: str | Path | None = None) -> WorkflowRunResult:
    """Run the rendered ``doc`` with ``parameters`` (Argo's names, string values) here; see the module docstring."""
    if workdir is not None:
        return LocalWorkflow(doc, parameters, workdir=Path(workdir), log=log).run()
    with tempfile.TemporaryDirectory(prefix="model-adapter-argo-") as tmp:
        return LocalWorkflow(doc, parameters, workdir=Path(tmp), log=log).run()
