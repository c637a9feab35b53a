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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter_base import Registry, VersionConflictError
from adapter_base.registry import layout
from adapter_base.steps.shared import mark_failed
from adapter_base.steps.commit import commit
from adapter_base.steps.evaluate import evaluate
from adapter_base.steps.finalize import finalize
from adapter_base.steps.journal import RECORD_FIELDS, check_record
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


# --- journal records that prove nothing --------------------------------------------------------


def write_record(store_uri: str, step: str, value: Any) -> None:
    with Registry.open(store_uri) as registry:
        registry.store.put_json(layout.step_record(RUN_ID, step), value)


@pytest.mark.slow
@pytest.mark.parametrize("value", [[], "x", None, 3, {}, {"passed": "yes"}, {"run_id": "other-run", "step": "evaluate", "version": 1, "promote": True}])
@pytest.mark.parametrize(("step", "missing", "finished"), [("load", "load", "train, commit, evaluate"), ("evaluate", "evaluate", "load, train, commit")])
def test_a_journal_record_that_is_not_a_sound_record_of_its_key_proves_nothing(scenario, value, step, missing, finished):
    """Valid JSON that is not an object, lacks a field, has a mistyped one or names another run: the step did not finish."""
    uri = scenario("not-promoted")
    write_record(uri, step, value)
    finalize(MODEL, RUN_ID, "RUNNING", None, store_uri=uri)
    s = model_state(uri)
    assert s["status"] == "failed"
    assert s["message"] == f"run {RUN_ID}: pipeline running: step {missing} did not finish (finished: {finished})"


@pytest.mark.slow
@pytest.mark.parametrize(
    "forged",
    [
        {"passed": False},
        {"passed": False, "reason": "forged", "run_id": RUN_ID, "step": "checks"},  # no model id
        "__sound__",  # a sound refusal, but the run's load and train finished: it was not refused
    ],
)
def test_a_forged_refusal_does_not_leave_a_failed_run_training(scenario, forged):
    uri = scenario("killed-after-train")
    with Registry.open(uri) as registry:
        model_id = registry.get_model(MODEL).id
    if forged == "__sound__":
        forged = {"passed": False, "reason": "forged", "run_id": RUN_ID, "step": "checks", "model_id": model_id}
    write_record(uri, "checks", forged)
    finalize(MODEL, RUN_ID, "RUNNING", None, store_uri=uri)
    s = model_state(uri)
    assert s["status"] == "failed" and "step commit did not finish" in s["message"]


FULL_JOURNAL = {
    "load": {"version": 0},
    "train": {"base_version": 0, "configuration": {}, "training": {}},
    "commit": {"version": 1, "base_version": 0},
    "evaluate": {"version": 1, "promote": True},
    "promote": {"version": 1, "alias": "production"},
}


@pytest.fixture(scope="module")
def journal_store(tmp_path_factory) -> tuple[str, str]:
    """A model at version 1 and a sound, complete journal of run ``RUN_ID`` for it."""
    root = tmp_path_factory.mktemp("journal")
    (root / "v1").mkdir()
    (root / "v1" / "weights.bin").write_bytes(b"w")
    with Registry.open(str(root / "store")) as registry:
        model = registry.upload_artifacts(registry.create_model(MODEL), root / "v1")
    return str(root / "store"), model.id


def finalize_with(uri: str, model_id: str, state: str, records: dict[str, Any]) -> tuple[str, str | None]:
    """The model's (status, message) after ``finalize`` over exactly ``records`` (a fresh ``trained`` model)."""
    with Registry.open(uri) as registry:
        registry.set_status(registry.get_model(model_id), "trained", None)
        registry.store.delete_prefix(layout.steps_prefix(RUN_ID))
        for step, value in records.items():
            registry.store.put_json(layout.step_record(RUN_ID, step), value)
    said = finalize(MODEL, RUN_ID, state, None, store_uri=uri)
    assert isinstance(said, str)
    with Registry.open(uri) as registry:
        m = registry.get_model(model_id)
        return m.status, m.status_message


_FIELDS = sorted({"run_id", "step", "model_id", *(name for fields in RECORD_FIELDS.values() for name in fields)})
_SCALARS = (
    st.none() | st.booleans() | st.integers(-2, 3) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
    | st.sampled_from([RUN_ID, *RECORD_FIELDS])
)
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=3), inner, max_size=6), max_leaves=12)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(step=st.sampled_from(sorted(RECORD_FIELDS)), state=st.sampled_from(["RUNNING", "FAILED", "UNKNOWN"]), data=st.data())
def test_finalize_never_raises_and_an_unsound_record_counts_as_absent(journal_store, step, state, data):
    """Any JSON value in any journal record (or a sound record with one field replaced by any value)."""
    uri, model_id = journal_store
    sound = {
        name: {**facts, "run_id": RUN_ID, "step": name, "model_id": model_id}
        for name, facts in {**FULL_JOURNAL, "checks": {"passed": False, "reason": "r"}, "superseded": {"at": "commit", "reason": "r", "base_version": 0, "current_version": 1}}.items()
    }
    value = data.draw(_JSON | st.builds(lambda name, v: {**sound[step], name: v}, st.sampled_from(_FIELDS), _JSON), label="record")
    records = {name: sound[name] for name in FULL_JOURNAL}
    records[step] = value
    outcome = finalize_with(uri, model_id, state, records)
    if check_record(value, RUN_ID, step, model_id) is not None:
        without = {name: rec for name, rec in records.items() if name != step}
        assert outcome == finalize_with(uri, model_id, state, without)


# --- overlapping runs ----------------------------------------------------------------------------


@pytest.mark.slow
def test_overlapping_runs_commit_once_and_each_promotes_only_the_version_it_evaluated(tmp_path):
    """Runs a and b both load version 0; a commits version 1, b's commit is refused naming both
    versions and its exit step leaves a's version and status alone. Run c then commits version 2;
    a's promotion still points the alias at version 1, the one a evaluated, and once c has
    promoted version 2 a late promotion of version 1 leaves it there."""
    uri = str(tmp_path / "store")
    make_digits(uri, epochs=2)
    ref_a = load(ADAPTER, MODEL, store_uri=uri, run_id="run-a")
    ref_b = load(ADAPTER, MODEL, store_uri=uri, run_id="run-b")
    staged_a = train(ADAPTER, ref_a, "run-a", dataset=DATASET, store_uri=uri)
    staged_b = train(ADAPTER, ref_b, "run-b", dataset=DATASET, store_uri=uri)
    committed_a = commit(staged_a.ref, store_uri=uri)
    assert committed_a.version == 1
    with pytest.raises(VersionConflictError, match=r"at version 1, not at version 0") as info:
        commit(staged_b.ref, store_uri=uri)
    assert "\n" not in str(info.value)
    said = finalize(MODEL, "run-b", "FAILED", "Task commit failed.", store_uri=uri)
    assert "commit refused" in said and "left at version 1 (trained)" in said, said
    assert model_state(uri) == {"status": "trained", "message": None, "version": 1, "aliases": {}}
    with Registry.open(uri) as registry:
        assert not list(registry.store.list(layout.model_prefix(committed_a.model_id) + "claims/"))

    gate = {"dataset": DATASET, "filters": {"subset": "test"}, "metric": "accuracy", "threshold": 0.5, "store_uri": uri}
    assert evaluate(ADAPTER, committed_a, "run-a", **gate).promote
    ref_c = load(ADAPTER, MODEL, store_uri=uri, run_id="run-c")
    committed_c = commit(train(ADAPTER, ref_c, "run-c", dataset=DATASET, store_uri=uri).ref, store_uri=uri)
    assert committed_c.version == 2
    promote(committed_a, "production", store_uri=uri, run_id="run-a")
    assert model_state(uri) == {"status": "trained", "message": None, "version": 2, "aliases": {"production": 1}}

    assert evaluate(ADAPTER, committed_c, "run-c", **gate).promote
    promote(committed_c, "production", store_uri=uri, run_id="run-c")
    with pytest.raises(VersionConflictError, match=r"points at version 2, newer than version 1"):
        promote(committed_a, "production", store_uri=uri, run_id="run-a")
    with pytest.raises(VersionConflictError, match="run run-a evaluated version 1 of 'digits-mlp', not version 2"):
        promote(committed_c, "production", store_uri=uri, run_id="run-a")  # run a never evaluated version 2
    assert model_state(uri) == {"status": "trained", "message": None, "version": 2, "aliases": {"production": 2}}
