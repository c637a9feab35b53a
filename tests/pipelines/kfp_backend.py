"""What the KFP backend does with a compiled step, done here without a cluster.

The backend's driver resolves a task's inputs into an ``ExecutorInput`` JSON document
and its launcher runs the container's ``command`` + ``args`` with ``{{$}}`` replaced by
that document (kubeflow/pipelines ``backend/src/v2/driver``, ``component/launcher_v2.go``).
The executor writes the step's outputs to ``outputs.outputFile``, which the Go launcher
parses as JSON: a bare ``NaN`` there fails the step after its work is done.

``run_compiled_step`` runs a step of a compiled YAML that way, in a subprocess of this
virtual environment (``python3`` on ``PATH`` is its interpreter, as in the image);
``strict_json`` / ``assert_strict_json_files`` parse the way Go's ``encoding/json`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str | bytes) -> Any:
    """``json.loads`` that rejects ``NaN``, ``Infinity`` and ``-Infinity`` like Go's decoder."""
    return json.loads(text, parse_constant=_reject_constant)


def assert_strict_json_files(root: str | Path) -> list[Path]:
    """Every file under ``root`` that holds JSON (first non-blank byte ``{`` or ``[``) parses strictly; returns them."""
    checked = []
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data.lstrip()[:1] not in (b"{", b"["):
            continue
        try:
            strict_json(data)
        except ValueError as exc:
            raise AssertionError(f"{path} is not strict JSON ({exc}): {data[:300]!r}") from None
        checked.append(path)
    return checked


def final_status(state: str, task: str = "exit-handler-1", run_name: str = "model-adapter-train-abcde") -> dict[str, Any]:
    """The ``PipelineTaskFinalStatus`` struct the driver builds (``resolve.go``): the error is left empty."""
    return {"state": state, "pipelineTaskName": task, "pipelineJobResourceName": run_name, "error": {}}


def artifact(uri: str | Path, schema: str, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One input or output artifact as the executor input carries it (a local path as its URI)."""
    return {"artifacts": [{"name": Path(uri).name, "type": {"schemaTitle": schema}, "uri": str(uri), "metadata": dict(metadata or {})}]}


@dataclass
class StepRun:
    """A finished run of a compiled step: exit status, its log, the parsed executor output."""

    returncode: int
    log: str
    output: dict[str, Any] | None


class CompiledPipeline:
    """A compiled pipeline YAML: each step's container spec and component."""

    def __init__(self, path: str | Path) -> None:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
        self.spec = docs[0]

    def container(self, step: str) -> dict[str, Any]:
        return self.spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]

    def component(self, step: str) -> dict[str, Any]:
        return self.spec["components"][f"comp-{step}"]

    def run_step(
        self,
        step: str,
        executor_input: Mapping[str, Any],
        workdir: str | Path,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> StepRun:
        """Run ``step``'s ``command`` + ``args`` with ``{{$}}`` replaced by ``executor_input`` (its ``outputFile`` set here)."""
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        output_file = workdir / "output_metadata.json"
        document = {**executor_input, "outputs": {**executor_input.get("outputs", {}), "outputFile": str(output_file)}}
        container = self.container(step)
        args = [json.dumps(document) if a == "{{$}}" else a for a in container["args"]]
        full_env = {
            **os.environ,
            **(env or {}),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]),
        }
        proc = subprocess.run(
            container["command"] + args, cwd=workdir, env=full_env, capture_output=True, text=True, timeout=timeout
        )
        output = strict_json(output_file.read_text()) if output_file.exists() else None
        return StepRun(returncode=proc.returncode, log=proc.stdout + proc.stderr, output=output)
