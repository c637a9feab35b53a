"""``model-adapter argo submit|schedule`` against an Argo Server REST API on 127.0.0.1: one health check first,
token and namespace on every call, objects created then updated in place, one-line errors that create nothing."""

from __future__ import annotations

import socket

import pytest

from adapter_base.cli.main import main
from argo_api_server import ArgoAPIServer
from support.argo_schema import problems

SUBMIT = ["argo", "submit", "predict", "--adapter", "a.b:C", "--model", "m", "--dataset", "d", "--shards", "2", "--image", "registry.example.com/t/i:1"]
SCHEDULE = ["argo", "schedule", "train", "--cron", "0 3 * * *", "--name", "nightly", "--adapter", "a.b:C", "--model", "m"]


@pytest.fixture
def server():
    with ArgoAPIServer(token="s3cr3t-token", allowed_namespaces=("ml",)) as s:
        yield s


def test_submit_checks_the_server_then_creates_the_template_and_a_run(server, capsys, monkeypatch):
    monkeypatch.setenv("ARGO_TOKEN", "Bearer s3cr3t-token")
    assert main([*SUBMIT, "--server", server.url, "--namespace", "ml"]) == 0
    out = capsys.readouterr().out
    first, *rest = server.requests
    assert (first.method, first.path) == ("GET", "/api/v1/version")
    assert all(r.headers["authorization"] == "Bearer s3cr3t-token" for r in server.requests)
    template = server.objects[("workflow-templates", "ml", "model-adapter-predict")]
    assert problems({k: v for k, v in template.items()}, "v4.0") == []
    (wf,) = [o for (c, _, _), o in server.objects.items() if c == "workflows"]
    assert wf["spec"]["workflowTemplateRef"] == {"name": "model-adapter-predict"}
    params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert params["num-shards"] == "2" and params["dataset"] == "d" and params["resume"] == "false"
    assert f"workflow: {wf['metadata']['name']}" in out and f"uid: {wf['metadata']['uid']}" in out
    assert f"url: {server.url}/workflows/ml/{wf['metadata']['name']}" in out
    assert "created WorkflowTemplate model-adapter-predict in namespace ml (Argo v4.0.10)" in out

    assert main([*SUBMIT, "--server", server.url, "--namespace", "ml", "--token", "s3cr3t-token"]) == 0
    assert "updated WorkflowTemplate model-adapter-predict" in capsys.readouterr().out
    assert len([1 for (c, _, _) in server.objects if c == "workflows"]) == 2


def test_schedule_creates_then_replaces_the_cron_workflow(server, capsys):
    argv = [*SCHEDULE, "--server", server.url, "--namespace", "ml", "--token", "s3cr3t-token"]
    assert main(argv) == 0
    assert "created WorkflowTemplate model-adapter-train and created CronWorkflow nightly" in capsys.readouterr().out
    assert main([*argv[:4], "30 4 * * *", *argv[5:]]) == 0
    assert "updated WorkflowTemplate model-adapter-train and updated CronWorkflow nightly" in capsys.readouterr().out
    cron = server.objects[("cron-workflows", "ml", "nightly")]
    assert cron["spec"]["schedules"] == ["30 4 * * *"] and problems(cron, "v4.0") == []
    assert [k for k in server.objects if k[0] == "cron-workflows"] == [("cron-workflows", "ml", "nightly")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--namespace", "ml"], "refused the request (401 Unauthorized, sent no token): token not valid"),
        (["--namespace", "ml", "--token", "wrong"], "(401 Unauthorized, sent a bearer token)"),
        (["--namespace", "other", "--token", "s3cr3t-token"], "denied GET /api/v1/workflow-templates/other/model-adapter-predict in namespace other (403 Forbidden"),
    ],
)
def test_refusals_are_one_line_and_create_nothing(server, capsys, monkeypatch, extra, message):
    monkeypatch.delenv("ARGO_TOKEN", raising=False)
    assert main([*SUBMIT, "--server", server.url, *extra]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert "s3cr3t" not in err and not server.objects
    assert not [r for r in server.requests if r.method in ("POST", "PUT")]


def test_an_unreachable_or_foreign_server_is_one_line(capsys, monkeypatch):
    monkeypatch.delenv("ARGO_SERVER", raising=False)
    assert main([*SUBMIT, "--server", f"http://127.0.0.1:{_free_port()}"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the Argo Server at http://127.0.0.1:" in err and err.count("\n") == 1
    assert main(SUBMIT) == 1
    assert "no Argo Server given: pass --server URL or set $ARGO_SERVER" in capsys.readouterr().err
    with ArgoAPIServer(version="") as foreign:
        assert main([*SUBMIT, "--server", foreign.url]) == 1
        assert "answered /api/v1/version without a version" in capsys.readouterr().err
        assert not foreign.objects
