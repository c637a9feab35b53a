"""Submitting and scheduling without a server: the few ``kfp.Client`` methods used, faked in memory.

There is no KFP API here, so ``FakeKFP`` keeps recurring runs, runs and experiments
in dicts, with the method names and shapes of ``kfp.Client`` (2.17).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from adapter_base import ValidationError
from adapter_base.cli.main import main
from pipelines import remote

FAKE_SECRET = "ZZ-FAKE-SECRET-remote-7d1e"


class FakeKFP:
    """In-memory stand-in for the ``kfp.Client`` methods the CLI uses."""

    def __init__(self, page_size: int | None = None) -> None:
        self.ids = (f"id-{i}" for i in itertools.count(1))
        self.experiments: dict[str, str] = {}
        self.recurring: dict[str, SimpleNamespace] = {}
        self.runs: list[SimpleNamespace] = []
        self.calls: list[tuple] = []
        self.page_size = page_size
        self.fail_create = False

    # experiments
    def create_experiment(self, name, description=None, namespace=None):
        self.calls.append(("create_experiment", name))
        self.experiments.setdefault(name, next(self.ids))
        return SimpleNamespace(experiment_id=self.experiments[name], display_name=name)

    def get_experiment(self, experiment_id=None, experiment_name=None, namespace=None):
        return SimpleNamespace(experiment_id=self.experiments[experiment_name], display_name=experiment_name)

    # recurring runs
    def create_recurring_run(self, experiment_id, job_name, description=None, start_time=None, end_time=None, interval_second=None,
                             cron_expression=None, max_concurrency=1, no_catchup=None, params=None, pipeline_package_path=None,
                             pipeline_id=None, version_id=None, enabled=True, pipeline_root=None, enable_caching=None,
                             cache_key=None, service_account=None):
        self.calls.append(("create_recurring_run", job_name))
        if self.fail_create:
            raise RuntimeError("API said no")
        spec = next(yaml.safe_load_all(Path(pipeline_package_path).read_text()))  # the package must be a pipeline
        rr = SimpleNamespace(
            recurring_run_id=next(self.ids), display_name=job_name, experiment_id=experiment_id, cron=cron_expression,
            max_concurrency=str(max_concurrency), no_catchup=no_catchup, params=dict(params or {}),
            enabled=enabled, pipeline_name=spec["pipelineInfo"]["name"],
        )
        self.recurring[rr.recurring_run_id] = rr
        return rr

    def list_recurring_runs(self, page_token="", page_size=10, sort_by="", experiment_id=None, namespace=None, filter=None):
        items = sorted(self.recurring.values(), key=lambda r: r.recurring_run_id)
        size = self.page_size or page_size
        start = int(page_token or 0)
        page = items[start:start + size]
        nxt = str(start + size) if start + size < len(items) else ""
        return SimpleNamespace(recurring_runs=page or None, next_page_token=nxt, total_size=len(items))

    def delete_recurring_run(self, recurring_run_id):
        self.calls.append(("delete_recurring_run", recurring_run_id))
        del self.recurring[recurring_run_id]

    def enable_recurring_run(self, recurring_run_id):
        self.calls.append(("enable_recurring_run", recurring_run_id))
        self.recurring[recurring_run_id].enabled = True

    # runs
    def create_run_from_pipeline_package(self, pipeline_file, arguments=None, run_name=None, experiment_name=None, namespace=None,
                                         pipeline_root=None, enable_caching=None, cache_key=None, service_account=None, experiment_id=None):
        text = Path(pipeline_file).read_text()
        run = SimpleNamespace(run_id=next(self.ids), display_name=run_name, arguments=dict(arguments or {}), experiment=experiment_name,
                              state="PENDING", created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                              finished_at=datetime(1970, 1, 1, tzinfo=timezone.utc), package_text=text)
        self.runs.append(run)
        return SimpleNamespace(run_id=run.run_id)

    def wait_for_run_completion(self, run_id, timeout, sleep_duration=5):
        run = next(r for r in self.runs if r.run_id == run_id)
        run.state = "SUCCEEDED"
        return run

    def list_runs(self, page_token="", page_size=10, sort_by="", experiment_id=None, namespace=None, filter=None):
        return SimpleNamespace(runs=list(reversed(self.runs))[:page_size], next_page_token="")

    def named(self, name):
        return [r for r in self.recurring.values() if r.display_name == name]


@pytest.fixture
def package(tmp_path) -> str:
    from pipelines.build import compile_pipeline

    return str(compile_pipeline("predict", tmp_path / "predict.yaml", "img:1", "cpu"))


def upsert(client, package, name="nightly-predict", cron="0 3 * * *", **kw):
    return remote.upsert_recurring_run(client, name=name, package_path=package, params={"model": "m"}, cron=cron, **kw)


def test_first_schedule_creates_one_enabled_recurring_run_with_concurrency_1(package):
    kfp = FakeKFP()
    result = upsert(kfp, package)
    assert result.action == "created" and result.replaced == []
    (rr,) = kfp.named("nightly-predict")
    assert rr.recurring_run_id == result.recurring_run_id and rr.enabled
    assert rr.max_concurrency == "1" and rr.no_catchup is True
    assert rr.cron == "0 0 3 * * *", "KFP cron has a seconds field"
    assert rr.params == {"model": "m"} and rr.pipeline_name == "model-adapter-predict"


def test_scheduling_again_replaces_never_duplicates(package):
    kfp = FakeKFP()
    first = upsert(kfp, package)
    upsert(kfp, package, name="other")
    second = upsert(kfp, package, cron="30 4 * * *")
    third = upsert(kfp, package, cron="30 5 * * *", max_concurrency=2)
    (rr,) = kfp.named("nightly-predict")
    assert second.action == third.action == "updated"
    assert second.replaced == [first.recurring_run_id] and third.replaced == [second.recurring_run_id]
    assert rr.recurring_run_id == third.recurring_run_id and rr.enabled and rr.cron == "0 30 5 * * *" and rr.max_concurrency == "2"
    assert len(kfp.named("other")) == 1, "other schedules are left alone"
    # the replacement is created disabled, the old one deleted, then it is enabled: never two enabled at once
    ops = [c for c in kfp.calls if c[0] != "create_experiment"]
    i = ops.index(("create_recurring_run", "nightly-predict"), 2)
    assert ops[i + 1:i + 3] == [("delete_recurring_run", first.recurring_run_id), ("enable_recurring_run", second.recurring_run_id)]


def test_leftover_duplicates_are_all_removed_across_pages(package):
    kfp = FakeKFP(page_size=2)
    for _ in range(3):  # e.g. made by hand or by an old tool
        kfp.create_recurring_run(experiment_id="e", job_name="dup", cron_expression="0 0 1 * * *", pipeline_package_path=package)
    for i in range(3):
        upsert(kfp, package, name=f"n{i}")
    result = upsert(kfp, package, name="dup")
    assert result.action == "updated" and len(result.replaced) == 3
    assert [r.recurring_run_id for r in kfp.named("dup")] == [result.recurring_run_id]


def test_a_failed_create_leaves_the_existing_schedule_untouched(package):
    kfp = FakeKFP()
    first = upsert(kfp, package)
    kfp.fail_create = True
    with pytest.raises(RuntimeError, match="API said no"):
        upsert(kfp, package, cron="1 1 * * *")
    (rr,) = kfp.named("nightly-predict")
    assert rr.recurring_run_id == first.recurring_run_id and rr.enabled


@pytest.mark.parametrize("expr,want", [("0 3 * * *", "0 0 3 * * *"), ("15 0 3 * * 1-5", "15 0 3 * * 1-5"), (" @daily ", "@daily"), ("@every 6h", "@every 6h")])
def test_cron_is_normalized_to_kfp_six_fields(expr, want):
    assert remote.normalize_cron(expr) == want


@pytest.mark.parametrize("expr", ["", "* * *", "1 2 3 4 5 6 7"])
def test_bad_cron_is_rejected(expr):
    with pytest.raises(ValidationError, match="cron"):
        remote.normalize_cron(expr)


def test_schedule_needs_a_name_and_positive_concurrency(package):
    with pytest.raises(ValidationError, match="name"):
        upsert(FakeKFP(), package, name="")
    with pytest.raises(ValidationError, match="max_concurrency"):
        upsert(FakeKFP(), package, max_concurrency=0)


# --- the CLI over the fake ---------------------------------------------------------------


@pytest.fixture
def fake_kfp(monkeypatch) -> FakeKFP:
    kfp = FakeKFP()
    monkeypatch.setattr(remote, "make_client", lambda host, namespace=None: kfp)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    return kfp


COMMON = ["--host", "http://kfp.example:8888", "--adapter", "examples.digits.adapter:DigitsAdapter", "--model", "digits-mlp",
          "--dataset", "digits", "--store", "s3://bucket/store", "--profile", "gpu-pool", "--image", "img:2"]


def test_cli_submit_prints_run_id_and_url_and_passes_only_parameters(fake_kfp, capsys):
    assert main(["pipeline", "submit", "predict", *COMMON, "--shards", "3", "--experiment", "exp1", "--subset", "test"]) == 0
    out = capsys.readouterr().out
    (run,) = fake_kfp.runs
    assert f"run_id: {run.run_id}" in out and f"url: http://kfp.example:8888/#/runs/details/{run.run_id}" in out
    assert run.experiment == "exp1" and run.display_name.startswith("predict-digits-mlp-")
    assert run.arguments == {
        "adapter": "examples.digits.adapter:DigitsAdapter", "model": "digits-mlp", "dataset": "digits",
        "store_uri": "s3://bucket/store", "configuration": {}, "batch_size": 0, "filters": {"subset": "test"},
        "num_shards": 3, "resume": False, "alias": "",
    }
    assert "image: img:2" in run.package_text and FAKE_SECRET not in run.package_text


def test_cli_submit_wait_reports_the_final_state(fake_kfp, capsys):
    assert main(["pipeline", "submit", "train", *COMMON, "--wait", "--threshold", "0.8", "--config", "epochs=5"]) == 0
    out = capsys.readouterr().out
    assert "state: SUCCEEDED" in out
    args = fake_kfp.runs[0].arguments
    assert args["threshold"] == 0.8 and args["configuration"] == {"epochs": 5} and args["test_filters"] == {"subset": "test"}
    assert fake_kfp.runs[0].experiment == "model-adapter"


def test_cli_schedule_creates_then_updates_by_name(fake_kfp, capsys):
    argv = ["pipeline", "schedule", "train", "--cron", "0 3 * * *", "--name", "nightly-train", *COMMON]
    assert main(argv) == 0
    assert main([*argv[:4], "0 4 * * *", *argv[5:]]) == 0
    out = capsys.readouterr().out
    assert "created recurring run nightly-train" in out and "updated recurring run nightly-train" in out
    (rr,) = fake_kfp.named("nightly-train")
    assert rr.cron == "0 0 4 * * *" and rr.max_concurrency == "1" and rr.params["model"] == "digits-mlp"


def test_cli_runs_lists_newest_first(fake_kfp, capsys):
    main(["pipeline", "submit", "train", *COMMON, "--run-name", "first"])
    main(["pipeline", "submit", "predict", *COMMON, "--run-name", "second"])
    capsys.readouterr()
    assert main(["pipeline", "runs", "--host", "http://kfp.example:8888"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "second" in lines[0] and "first" in lines[1] and "PENDING" in lines[0] and "2026-01-02T03:04:05Z" in lines[0]
    assert main(["pipeline", "runs", "--host", "http://kfp.example:8888", "--json"]) == 0
    assert '"finished_at": ""' in capsys.readouterr().out


def test_cli_run_requires_local(capsys):
    with pytest.raises(SystemExit):
        main(["pipeline", "run", "train", "--adapter", "a:B", "--model", "m"])
    assert "--local" in capsys.readouterr().err


def test_cli_rejects_bad_json_filters(fake_kfp, capsys):
    assert main(["pipeline", "submit", "predict", *COMMON, "--filters", "[1]"]) == 1
    assert "expected a JSON object" in capsys.readouterr().err
