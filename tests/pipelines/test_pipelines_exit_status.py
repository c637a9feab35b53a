"""The train pipeline's exit step against the states the real KFP backend sends.

The backend passes the exit handler the MLMD state of the wrapped DAG
(``backend/src/v2/driver/resolve.go``: ``GetLastKnownState().String()``): ``COMPLETE``,
``FAILED``, ``CANCELED``, or ``RUNNING`` when the DAG's state was not propagated
(backends before 2.17, kubeflow/pipelines #13321 / #13322; a skipped ``dsl.If`` leaves
its DAG short of its expected task count). ``kfp.local`` says ``SUCCEEDED`` / ``FAILED``.

Each scenario runs the real step functions with a backend-style run id into a local
store (once per module), then every test works on its own copy of that store. The
compiled-YAML tests run the exit step's own container command with the executor input
the backend would send.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from adapter_base import Registry
from adapter_base.steps.shared import mark_failed
from adapter_base.steps.commit import commit
from adapter_base.steps.evaluate import evaluate
from adapter_base.steps.finalize import finalize
from adapter_base.steps.load import load
from adapter_base.steps.promote import promote
from adapter_base.steps.train import train
from kfp_backend import CompiledPipeline, final_status
from pipelines.kfp.build import compile_pipeline
from pipelines_support import ADAPTER, DATASET, MODEL, make_digits

RUN_ID = "6f1c2b0e-3d4a-4b5c-9e8f-0a1b2c3d4e5f"  # what {{$.pipeline_job_uuid}} resolves to

#: How far each scenario's run got before the exit step: (threshold, last step that ran).
SCENARIOS = {
    "promoted": (0.5, "promote"),
    "not-promoted": (1.01, "evaluate"),  # the dsl.If was skipped: the run is complete without promote
    "killed-after-train": (0.5, "train"),  # the commit pod was deleted: nothing recorded a failure
    "killed-before-promote": (0.5, "evaluate"),  # evaluate decided to promote; the promote pod never finished
}


def run_steps(store_uri: str, threshold: float, last: str) -> None:
    """The train DAG's steps in process, as its pods would run them, up to and including ``last``."""
    make_digits(store_uri, epochs=3)
    ref = load(ADAPTER, MODEL, store_uri=store_uri, run_id=RUN_ID)
    staged = train(ADAPTER, ref, RUN_ID, dataset=DATASET, store_uri=store_uri)
    if last == "train":
        return
    committed = commit(staged.ref, store_uri=store_uri)
    outcome = evaluate(
        ADAPTER, committed, RUN_ID, dataset=DATASET, filters={"subset": "test"}, metric="accuracy", threshold=threshold, store_uri=store_uri
    )
    if last == "evaluate":
        return
    assert outcome.promote
    promote(committed, "production", store_uri=store_uri, run_id=RUN_ID)


@pytest.fixture(scope="module")
def scenario_stores(tmp_path_factory) -> Callable[[str], Path]:
    """Each scenario's store, built on first use; tests copy it."""
    built: dict[str, Path] = {}
    home = tmp_path_factory.mktemp("home")

    def get(name: str) -> Path:
        if name not in built:
            path = tmp_path_factory.mktemp(name) / "store"
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("MODEL_ADAPTER_HOME", str(home))
                run_steps(str(path), *SCENARIOS[name])
            built[name] = path
        return built[name]

    return get


@pytest.fixture
def scenario(scenario_stores, tmp_path) -> Callable[[str], str]:
    """A fresh copy of a scenario's store; returns its URI."""

    def copy(name: str) -> str:
        dest = tmp_path / f"{name}-store"
        shutil.copytree(scenario_stores(name), dest)
        return str(dest)

    return copy


def model_state(store_uri: str) -> dict[str, Any]:
    with Registry.open(store_uri) as registry:
        m = registry.get_model(MODEL)
        return {"status": m.status, "message": m.status_message, "version": m.version, "aliases": dict(m.aliases)}


# --- every state name, in process ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("state", ["COMPLETE", "CACHED", "SUCCEEDED", "complete", "RUNNING", "NEW", "UNKNOWN", "", None])
def test_a_successful_run_stays_trained_for_success_and_undetermined_states(scenario, state):
    uri = scenario("promoted")
    said = finalize(MODEL, RUN_ID, state, None, store_uri=uri)
    assert "left as it is" in said
    assert model_state(uri) == {"status": "trained", "message": None, "version": 1, "aliases": {"production": 1}}


@pytest.mark.slow
@pytest.mark.parametrize(("state", "word"), [("FAILED", "failed"), ("CANCELED", "canceled"), ("CANCELLED", "cancelled"), ("ERROR", "error")])
def test_explicit_failure_states_mark_even_a_complete_looking_run_failed(scenario, state, word):
    uri = scenario("promoted")
    finalize(MODEL, RUN_ID, state, "Task exit-handler-1 failed.", store_uri=uri)
    s = model_state(uri)
    assert s["status"] == "failed" and s["message"] == f"run {RUN_ID}: pipeline {word}: Task exit-handler-1 failed."
    assert s["version"] == 1, "the committed version stays; the status says the run did not succeed"


@pytest.mark.slow
def test_running_after_a_skipped_promotion_is_a_success(scenario):
    uri = scenario("not-promoted")
    assert "every step finished (version 1)" in finalize(MODEL, RUN_ID, "RUNNING", None, store_uri=uri)
    assert model_state(uri) == {"status": "trained", "message": None, "version": 1, "aliases": {}}


@pytest.mark.slow
@pytest.mark.parametrize("state", ["RUNNING", "UNKNOWN", None])
@pytest.mark.parametrize(
    ("name", "missing", "finished"),
    [("killed-after-train", "commit", "load, train"), ("killed-before-promote", "promote", "load, train, commit, evaluate")],
)
def test_undetermined_states_mark_a_run_that_stopped_early_failed_naming_the_step(scenario, state, name, missing, finished):
    uri = scenario(name)
    finalize(MODEL, RUN_ID, state, None, store_uri=uri)
    s = model_state(uri)
    said = (state or "unknown").lower()
    assert s["status"] == "failed"
    assert s["message"] == f"run {RUN_ID}: pipeline {said}: step {missing} did not finish (finished: {finished})"


@pytest.mark.slow
@pytest.mark.parametrize("state", ["RUNNING", "FAILED"])
def test_a_failure_a_step_recorded_is_kept_whatever_the_state(scenario, state):
    uri = scenario("promoted")
    with Registry.open(uri) as registry:
        mark_failed(registry, MODEL, RUN_ID, "evaluate", ValueError("exact cause"))
    assert "already records it" in finalize(MODEL, RUN_ID, state, "generic", store_uri=uri)
    assert model_state(uri)["message"] == f"run {RUN_ID}: evaluate: ValueError: exact cause"


@pytest.mark.slow
def test_another_runs_journal_does_not_count(scenario):
    uri = scenario("promoted")
    finalize(MODEL, "other-run", "RUNNING", None, store_uri=uri)
    s = model_state(uri)
    assert s["status"] == "failed" and s["message"] == "run other-run: pipeline running: step load did not finish (finished: none)"


# --- the compiled exit step, run from the YAML's own command ----------------------------------


@pytest.fixture(scope="module")
def compiled_train(tmp_path_factory) -> CompiledPipeline:
    return CompiledPipeline(compile_pipeline("train", tmp_path_factory.mktemp("yaml") / "train.yaml", "model-adapter:test", "cpu"))


def exit_step_input(store_uri: str, state: str) -> dict[str, Any]:
    """The executor input the backend's driver resolves for the exit task (``finalize``)."""
    return {
        "inputs": {
            "parameterValues": {
                "model": MODEL,
                "store_uri": store_uri,
                "run_id": RUN_ID,
                "status": final_status(state),
            }
        }
    }


def test_the_compiled_exit_task_takes_the_final_status_of_the_wrapped_dag(compiled_train):
    task = compiled_train.spec["root"]["dag"]["tasks"]["finalize"]
    assert task["inputs"]["parameters"]["status"] == {"taskFinalStatus": {"producerTask": "exit-handler-1"}}
    assert task["inputs"]["parameters"]["run_id"] == {"runtimeValue": {"constant": "{{$.pipeline_job_uuid}}"}}
    assert task["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "state", "status", "aliases"),
    [
        ("promoted", "COMPLETE", "trained", {"production": 1}),
        ("promoted", "RUNNING", "trained", {"production": 1}),
        ("not-promoted", "RUNNING", "trained", {}),
        ("promoted", "FAILED", "failed", {"production": 1}),
        ("promoted", "CANCELED", "failed", {"production": 1}),
        ("killed-after-train", "RUNNING", "failed", {}),
    ],
)
def test_the_compiled_exit_step_run_as_the_backend_runs_it(compiled_train, scenario, tmp_path, name, state, status, aliases):
    uri = scenario(name)
    run = compiled_train.run_step("finalize", exit_step_input(uri, state), tmp_path / "pod", env={"MODEL_ADAPTER_HOME": str(tmp_path / "home")})
    assert run.returncode == 0, run.log
    assert run.output == {}, "the exit step has no outputs; what it writes is strict JSON"
    s = model_state(uri)
    assert (s["status"], s["aliases"]) == (status, aliases), run.log
    if status == "failed":
        assert s["message"].startswith(f"run {RUN_ID}: pipeline {state.lower()}: ")
    else:
        assert s["message"] is None and s["version"] == 1
