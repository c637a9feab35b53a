"""Running a pipeline under ``kfp.local`` in the current Python environment.

``kfp.local.SubprocessRunner(use_venv=False)`` runs each step as a subprocess of
this interpreter: the steps import ``adapter_base`` and the user's adapter from
the current environment and inherit its environment variables (the store's
``AWS_*`` settings, ``MODEL_ADAPTER_HOME``). Outputs go to a local
``pipeline_root``; the Kubernetes platform config (secrets, node selectors,
accelerators) does not apply locally. Retries, ``dsl.If``, ``ParallelFor``,
``dsl.Collected`` and ``dsl.ExitHandler`` with ``PipelineTaskFinalStatus`` do.

Before ``kfp.local`` starts, the run is checked (``check_before_run``): what would fail
after training (an unknown metric, a test filter with no annotated items, a model never
trained asked to predict) is refused with nothing started and the model untouched. Ctrl-C
stops every step at once (``pipelines.kfp.interrupt``) and raises ``PipelineInterrupted``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from adapter_base.errors import AdapterError, NotFoundError, ValidationError
from adapter_base.storage import adapter_home

from ..engine import find_engine
from ..results import model_state
from .interrupt import StepProcesses
from .runners import check_store_for_containers, local_runner

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class PipelineRunError(AdapterError):
    """A local pipeline run failed."""


class PipelineInterrupted(KeyboardInterrupt):
    """A local pipeline run was stopped by Ctrl-C: its steps are stopped, its message says what was left."""


@dataclass
class LocalRunResult:
    """What a local run did."""

    kind: str
    seconds: float
    pipeline_root: str
    summary: dict[str, Any] = field(default_factory=dict)


def default_pipeline_root() -> Path:
    """``<MODEL_ADAPTER_HOME>/kfp-local``: where local runs keep their step outputs."""
    return adapter_home() / "kfp-local"


@contextlib.contextmanager
def preserved_process_state() -> Iterator[None]:
    """Restore the root logger (handlers, level) and ``builtins.print`` when the block exits.

    kfp.local swaps both for every task (``local_logger_context``, ``indented_print``) and
    runs ``ParallelFor`` iterations on threads, so overlapping swaps can leave its
    per-task handler (bound to whatever ``sys.stdout`` was then) and its indenting
    ``print`` installed after the run: later log records would go to a stale stream,
    or fail there and dump their exception chain to stderr.
    """
    root = logging.getLogger()
    handlers, level, printer = root.handlers[:], root.level, builtins.print
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        builtins.print = printer


def run_local(
    kind: str,
    arguments: Mapping[str, Any],
    *,
    pipeline_root: str | Path | None = None,
    image: str | None = None,
    profile: str = "cpu",
    runner: str = "subprocess",
    engine: str | None = None,
    **options: Any,
) -> LocalRunResult:
    """Run pipeline ``kind`` with ``arguments`` under ``kfp.local``; returns timing and a summary.

    ``train``: the summary is the model's record after the run (version, status,
    aliases, evaluation). ``predict``: the merged prediction summary. A failed run
    raises ``PipelineRunError`` (for ``train`` with the model's recorded status).

    ``runner``: ``subprocess`` (steps in this Python environment) or ``docker`` (each step
    in ``image`` through Docker or podman, ``engine`` to choose; see ``pipelines.kfp.runners``).
    """
    from kfp import local

    from .build import build_pipeline

    store_uri = str(arguments.get("store_uri") or "")
    if runner == "docker":
        check_store_for_containers(str(arguments.get("store_uri") or ""))
    before = check_before_run(kind, arguments, runner)  # the model's version now: a train run must commit a new one
    root = Path(pipeline_root) if pipeline_root else default_pipeline_root()
    root.mkdir(parents=True, exist_ok=True)
    container_engine = None
    if runner == "docker":
        from components._factory import default_image  # imports kfp: kept out of CLI start-up

        container_engine = find_engine(engine)
        image = container_engine.image_ref(image or default_image())
    steps = StepProcesses(container_engine)
    start = time.monotonic()
    try:
        with (
            steps.installed(),
            local_runner(runner, root.resolve(), container_engine, labels=steps.labels) as config,
            warnings.catch_warnings(),
            preserved_process_state(),
        ):
            warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
            warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
            local.init(runner=config, pipeline_root=str(root.resolve()), raise_on_error=True)
            pipeline = build_pipeline(kind, image, profile, **options)
            task = pipeline(**dict(arguments))
    except KeyboardInterrupt:
        steps.interrupt()  # also when Ctrl-C came before the handler was in place
        raise PipelineInterrupted(_after_interrupt(kind, store_uri, arguments, steps, time.monotonic() - start)) from None
    except Exception as exc:  # noqa: BLE001 - kfp.local raises RuntimeError with colour codes
        seconds = time.monotonic() - start
        message = _ANSI.sub("", str(exc)).rstrip(". ")
        if kind == "train":
            try:
                state = model_state(store_uri, str(arguments["model"]))
                if state["status"] == "failed" and state["status_message"]:
                    message += f"; model {state['model_name']} status failed: {state['status_message']}"
                elif state["version"] != before:  # overtaken: the commit step's log has the refusal
                    message += (
                        f"; model {state['model_name']} moved from version {before} to version {state['version']} ({state['status']}) "
                        "meanwhile: that version stands, this run's result was not kept"
                    )
            except (AdapterError, NotFoundError, KeyError):
                pass
        raise PipelineRunError(f"local {kind} run failed after {seconds:.1f}s: {message}") from None
    seconds = time.monotonic() - start
    # Trust what the run left, not the runner's word: kfp.local's own DockerRunner takes a
    # container removed before its exit code was read for a success (runners.run_container
    # reads the code first; this also covers a runner that does not).
    if kind == "train":
        summary = model_state(store_uri, str(arguments["model"]))
        if summary["status"] == "failed" or summary["version"] == before:
            raise PipelineRunError(
                f"local train run reported success after {seconds:.1f}s but committed no new version of model "
                f"{summary['model_name']} (status {summary['status']}: {summary['status_message'] or 'no message'})"
            )
    else:
        output = Path(task.output.path)
        if not output.is_file():
            raise PipelineRunError(f"local predict run reported success after {seconds:.1f}s but wrote no merged summary ({output})")
        summary = json.loads(output.read_text())
    return LocalRunResult(kind=kind, seconds=seconds, pipeline_root=str(root), summary=summary)


def check_before_run(kind: str, arguments: Mapping[str, Any], runner: str = "subprocess") -> int:
    """Refuse a run that is bound to fail, before anything starts (``adapter_base.flows.preflight``); returns the model's version.

    With ``runner="docker"`` the adapter may exist only in the image (a user image ``FROM``
    ours): whatever needs the adapter class is left to the run's ``load`` step, in the image.
    """
    from adapter_base.flows.preflight import check_train_run, require_items, require_trained, warn_label_mismatch
    from adapter_base.loading import load_adapter_class
    from adapter_base.registry import Registry

    with Registry.open(str(arguments.get("store_uri") or "") or None) as registry:
        model = registry.get_model(str(arguments["model"]))
        dataset_ref = str(arguments.get("dataset") or "") or model.dataset_id
        if kind == "train":
            if not dataset_ref:
                raise PipelineRunError(f"model {model.name} names no dataset to train on: pass --dataset")
            threshold = arguments.get("threshold")
            check_train_run(
                registry, model, registry.get_dataset(dataset_ref), arguments.get("test_filters"), str(arguments.get("metric") or "accuracy"),
                None if threshold is None else float(threshold),
            )
        else:
            try:
                adapter_cls = load_adapter_class(str(arguments["adapter"]))
            except ValidationError:
                if runner != "docker":
                    raise
            else:
                require_trained(adapter_cls, model)
            dataset = registry.get_dataset(dataset_ref)
            require_items(registry, dataset, arguments.get("filters"), "predict")
            warn_label_mismatch(model, dataset)
        return model.version


def _after_interrupt(kind: str, store_uri: str, arguments: Mapping[str, Any], steps: StepProcesses, seconds: float) -> str:
    """Clean up after Ctrl-C (a train run's model left ``training`` is marked failed); what the user should know."""
    from adapter_base.registry import Registry

    deadline = time.monotonic() + 10
    while steps.alive() and time.monotonic() < deadline:  # the grace period, then they are killed
        time.sleep(0.05)
    said = f"local {kind} run stopped after {seconds:.1f}s"
    if kind == "predict":
        return f"{said}; items predicted so far are kept"
    try:
        with Registry.open(store_uri or None) as registry:
            model = registry.get_model(str(arguments["model"]))
            if model.status == "training":
                registry.set_status(model, "failed", f"{said} (interrupted); checkpoints kept")
    except (AdapterError, NotFoundError) as exc:
        return f"{said}; could not record it on the model: {exc}"
    return f"{said}; the model keeps its current version and its checkpoints (training resumes from them)"
