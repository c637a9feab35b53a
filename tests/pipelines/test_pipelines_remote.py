"""Submitting, scheduling and listing over HTTP: the real ``kfp.Client`` against a local KFP v2beta1 API.

``KFPAPIServer`` (tests/pipelines/kfp_api_server.py) answers the REST paths the
commands call and records each request, so these tests check what goes over the
wire: the pipeline spec uploaded, the run parameters, the recurring run's cron and
max concurrency, and the order of create / delete / enable when a schedule is replaced.
Credentials and namespaces are in test_pipelines_remote_auth.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from adapter_base import ValidationError
from adapter_base.cli.main import main
from kfp_api_server import KFPAPIServer
from pipelines.kfp import remote
from pipelines.kfp.build import compile_pipeline

FAKE_SECRET = "ZZ-FAKE-SECRET-remote-7d1e"


@pytest.fixture(autouse=True)
def _no_kfp_credentials(monkeypatch):
    """No token from the environment: each test says which credentials it uses."""
    monkeypatch.delenv(remote.TOKEN_ENV, raising=False)
    monkeypatch.delenv(remote.SA_TOKEN_ENV, raising=False)


@pytest.fixture
def api():
    with KFPAPIServer() as server:
        yield server


@pytest.fixture
def package(tmp_path) -> str:
    return str(compile_pipeline("predict", tmp_path / "predict.yaml", "img:1", "cpu"))


def compiled_docs(path: str | Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def upsert(api: KFPAPIServer, package: str, name="nightly-predict", cron="0 3 * * *", **kw):
    conn = remote.connect(api.url)
    with conn.errors():
        return remote.upsert_recurring_run(conn.client, name=name, package_path=package, params={"model": "m"}, cron=cron, **kw)


# --- recurring runs ---------------------------------------------------------------------


def test_first_schedule_creates_one_enabled_recurring_run_with_concurrency_1(api, package):
    result = upsert(api, package)
    assert result.action == "created" and result.replaced == []
    (post,) = api.calls("POST", "/apis/v2beta1/recurringruns")
    body = post.body
    assert body["display_name"] == "nightly-predict" and body["mode"] == "ENABLE"
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}, "KFP cron has a seconds field"
    assert str(body["max_concurrency"]) == "1" and body["no_catchup"] is True
    assert body["runtime_config"]["parameters"] == {"model": "m"}
    spec, platform = compiled_docs(package)
    assert body["pipeline_spec"] == {"pipeline_spec": spec, "platform_spec": platform}, "the compiled package is uploaded as is"
    assert body["experiment_id"] == result.experiment_id
    (rr,) = api.named("nightly-predict")
    assert rr["recurring_run_id"] == result.recurring_run_id and rr["status"] == "ENABLED"


def test_scheduling_again_replaces_never_duplicates(api, package):
    first = upsert(api, package)
    upsert(api, package, name="other")
    second = upsert(api, package, cron="30 4 * * *")
    third = upsert(api, package, cron="30 5 * * *", max_concurrency=2)
    assert second.action == third.action == "updated"
    assert second.replaced == [first.recurring_run_id] and third.replaced == [second.recurring_run_id]
    (rr,) = api.named("nightly-predict")
    assert rr["recurring_run_id"] == third.recurring_run_id and rr["status"] == "ENABLED"
    assert rr["trigger"]["cron_schedule"]["cron"] == "0 30 5 * * *" and str(rr["max_concurrency"]) == "2"
    assert len(api.named("other")) == 1, "other schedules are left alone"
    # The replacement is created disabled, the old one deleted, then it is enabled: never two enabled at once.
    writes = [(r.method, r.path.rsplit("/", 1)[-1], (r.body or {}).get("mode")) for r in api.calls() if r.method != "GET"]
    writes = [w for w in writes if w[1] != "experiments"]
    i = writes.index(("POST", "recurringruns", "DISABLE"))
    assert writes[i + 1:i + 3] == [("DELETE", first.recurring_run_id, None), ("POST", f"{second.recurring_run_id}:enable", None)]


def test_leftover_duplicates_are_all_removed_across_pages(package):
    with KFPAPIServer(page_size=2) as api:
        conn = remote.connect(api.url)
        exp = conn.client.create_experiment("model-adapter")
        for _ in range(3):  # e.g. made by hand or by an old tool
            conn.client.create_recurring_run(experiment_id=exp.experiment_id, job_name="dup", cron_expression="0 0 1 * * *", pipeline_package_path=package)
        for i in range(3):
            upsert(api, package, name=f"n{i}")
        result = upsert(api, package, name="dup")
        assert result.action == "updated" and len(result.replaced) == 3
        assert [r["recurring_run_id"] for r in api.named("dup")] == [result.recurring_run_id]
        assert any(r.query.get("page_token") for r in api.calls("GET", "/apis/v2beta1/recurringruns")), "the listing was paged"


def test_a_failed_create_leaves_the_existing_schedule_untouched(api, package):
    first = upsert(api, package)
    api.fail_create_recurring = True
    with pytest.raises(remote.KFPAccessError, match=r"answered 500 .*API said no"):
        upsert(api, package, cron="1 1 * * *")
    (rr,) = api.named("nightly-predict")
    assert rr["recurring_run_id"] == first.recurring_run_id and rr["status"] == "ENABLED"
    assert not api.calls("DELETE")


@pytest.mark.parametrize("expr,want", [("0 3 * * *", "0 0 3 * * *"), ("15 0 3 * * 1-5", "15 0 3 * * 1-5"), (" @daily ", "@daily"), ("@every 6h", "@every 6h")])
def test_cron_is_normalized_to_kfp_six_fields(expr, want):
    assert remote.normalize_cron(expr) == want


@pytest.mark.parametrize("expr", ["", "* * *", "1 2 3 4 5 6 7"])
def test_bad_cron_is_rejected(expr):
    with pytest.raises(ValidationError, match="cron"):
        remote.normalize_cron(expr)


def test_schedule_needs_a_name_and_positive_concurrency(api, package):
    with pytest.raises(ValidationError, match="name"):
        upsert(api, package, name="")
    with pytest.raises(ValidationError, match="max_concurrency"):
        upsert(api, package, max_concurrency=0)
    assert not api.calls("POST")


# --- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)


def common(api: KFPAPIServer) -> list[str]:
    return ["--host", api.url, "--adapter", "examples.digits.adapter:DigitsAdapter", "--model", "digits-mlp",
            "--dataset", "digits", "--store", "s3://bucket/store", "--profile", "gpu-pool", "--image", "img:2"]


def test_cli_submit_uploads_the_spec_and_passes_only_parameters(api, secret_env, capsys, tmp_path):
    assert main(["pipeline", "submit", "predict", *common(api), "--shards", "3", "--experiment", "exp1", "--subset", "test"]) == 0
    out = capsys.readouterr().out
    (exp_post,) = api.calls("POST", "/apis/v2beta1/experiments")
    assert exp_post.body["display_name"] == "exp1"
    (run_post,) = api.calls("POST", "/apis/v2beta1/runs")
    (run,) = api.runs.values()
    assert out.splitlines() == [f"run_id: {run['run_id']}", f"url: {api.url}/#/runs/details/{run['run_id']}"], "stdout is only the result"
    body = run_post.body
    assert body["display_name"].startswith("predict-digits-mlp-") and body["experiment_id"] == api.experiments[body["experiment_id"]]["experiment_id"]
    assert body["runtime_config"]["parameters"] == {
        "adapter": "examples.digits.adapter:DigitsAdapter", "model": "digits-mlp", "dataset": "digits",
        "store_uri": "s3://bucket/store", "configuration": {}, "batch_size": 0, "filters": {"subset": "test"},
        "num_shards": 3, "resume": False, "alias": "",
    }
    expected = compiled_docs(compile_pipeline("predict", tmp_path / "p.yaml", "img:2", "gpu-pool"))
    assert body["pipeline_spec"] == {"pipeline_spec": expected[0], "platform_spec": expected[1]}
    executors = body["pipeline_spec"]["pipeline_spec"]["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"img:2"}
    assert FAKE_SECRET not in json.dumps(body)


@pytest.mark.parametrize("final,code", [("SUCCEEDED", 0), ("FAILED", 1), ("CANCELED", 1)])
def test_cli_submit_wait_reports_the_final_state(secret_env, capsys, final, code):
    with KFPAPIServer(run_states=("PENDING", "RUNNING", final)) as api:
        assert main(["pipeline", "submit", "train", *common(api), "--wait", "--threshold", "0.8", "--config", "epochs=5"]) == code
        assert f"state: {final}" in capsys.readouterr().out
        params = api.calls("POST", "/apis/v2beta1/runs")[0].body["runtime_config"]["parameters"]
        assert params["threshold"] == 0.8 and params["configuration"] == {"epochs": 5} and params["test_filters"] == {"subset": "test"}
        assert [e["display_name"] for e in api.experiments.values()] == ["model-adapter"]
        assert len(api.calls("GET", "/apis/v2beta1/runs/")) == 3, "polled until the run ended"


def test_cli_schedule_creates_then_updates_by_name(api, capsys):
    argv = ["pipeline", "schedule", "train", "--cron", "0 3 * * *", "--name", "nightly-train", *common(api)]
    assert main(argv) == 0
    assert main([*argv[:4], "0 4 * * *", *argv[5:]]) == 0
    out = capsys.readouterr().out
    assert "created recurring run nightly-train" in out and "updated recurring run nightly-train" in out
    (rr,) = api.named("nightly-train")
    assert rr["trigger"]["cron_schedule"]["cron"] == "0 0 4 * * *" and str(rr["max_concurrency"]) == "1"
    assert rr["runtime_config"]["parameters"]["model"] == "digits-mlp"
    assert rr["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "model-adapter-train"


def test_cli_runs_lists_newest_first(api, capsys):
    main(["pipeline", "submit", "train", *common(api), "--run-name", "first"])
    main(["pipeline", "submit", "predict", *common(api), "--run-name", "second"])
    capsys.readouterr()
    assert main(["pipeline", "runs", "--host", api.url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "second" in lines[0] and "first" in lines[1] and "PENDING" in lines[0] and "2026-01-02T03:04:05Z" in lines[0]
    (listing,) = api.calls("GET", "/apis/v2beta1/runs")
    assert listing.query["sort_by"] == "created_at desc" and listing.query["page_size"] == "20"
    assert main(["pipeline", "runs", "--host", api.url, "--json", "--experiment", "model-adapter"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in runs] == ["second", "first"] and runs[0]["finished_at"] == ""


def test_cli_run_requires_local(capsys):
    with pytest.raises(SystemExit):
        main(["pipeline", "run", "train", "--adapter", "a:B", "--model", "m"])
    assert "--local" in capsys.readouterr().err


def test_cli_rejects_bad_json_filters(api, capsys):
    assert main(["pipeline", "submit", "predict", *common(api), "--filters", "[1]"]) == 1
    assert "expected a JSON object" in capsys.readouterr().err
    assert not api.calls()


def test_a_cron_tick_skips_while_a_run_of_the_same_pipeline_and_model_is_active(capsys, monkeypatch):
    """A CronJob's Forbid covers only its short submitter: the submitter itself must not start a second train."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)  # submitting never needs the store's keys
    with KFPAPIServer(run_states=("RUNNING",)) as api:
        tick = ["pipeline", "submit", "train", *common(api), "--skip-if-active"]
        assert main(tick) == 0
        (first,) = api.runs.values()
        api.runs[first["run_id"]]["state"] = "RUNNING"
        assert main(tick) == 0
        assert len(api.runs) == 1
        out = capsys.readouterr().out
        assert f"skipped: run {first['display_name']} ({first['run_id']}) of the train pipeline on model digits-mlp is still RUNNING" in out
        # another model, or another pipeline, is not held back
        assert main(["pipeline", "submit", "predict", *common(api), "--skip-if-active"]) == 0
        other = [a if a != "digits-mlp" else "other-model" for a in tick]
        assert main(other) == 0
        assert len(api.runs) == 3
        api.runs[first["run_id"]]["state"] = "SUCCEEDED"
        assert main(tick) == 0
        assert len(api.runs) == 4


def test_a_retried_tick_creates_its_run_once(capsys):
    """The CronJob names the run after its Job: a submitter retried after a lost answer finds the run and stops."""
    with KFPAPIServer() as api:
        tick = ["pipeline", "submit", "predict", *common(api), "--run-name", "predict-digits-mlp-model-adapter-predict-29000000", "--skip-if-exists"]
        assert main(tick) == 0 and main(tick) == 0
        (run,) = api.runs.values()
        assert run["display_name"] == "predict-digits-mlp-model-adapter-predict-29000000"
        assert f"skipped: run predict-digits-mlp-model-adapter-predict-29000000 already exists ({run['run_id']}, " in capsys.readouterr().out
        assert main(["pipeline", "submit", "predict", *common(api), "--skip-if-exists"]) == 1
        assert "pipeline.--skip-if-exists: needs --run-name" in capsys.readouterr().err
