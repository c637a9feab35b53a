"""Multi-user Kubeflow over HTTP: bearer tokens, namespaces, refusals and the backend floor.

The real ``kfp.Client`` talks to ``KFPAPIServer`` on 127.0.0.1, set up like a
multi-user Kubeflow (token required, only the profile namespace allowed) or like a
standalone KFP. Every assertion is about what went over the wire or the one line a
user sees.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from adapter_base.cli.main import main
from kfp_api_server import KFPAPIServer
from pipelines.kfp import remote

NS = "kubeflow-user-example-com"
TOKEN = "eyJ-test-token-Zq81"  # never printed


@pytest.fixture(autouse=True)
def _no_kfp_credentials(monkeypatch):
    monkeypatch.delenv(remote.TOKEN_ENV, raising=False)
    monkeypatch.delenv(remote.SA_TOKEN_ENV, raising=False)
    assert not os.path.exists(remote.SA_TOKEN_PATH), "this machine has a KFP service-account token mounted: the defaults cannot be tested here"


@pytest.fixture
def kubeflow():
    """A multi-user KFP API: bearer TOKEN required, namespace NS allowed."""
    with KFPAPIServer(multi_user=True, token=TOKEN, allowed_namespaces=(NS,)) as server:
        yield server


@pytest.fixture
def sa_token(tmp_path, monkeypatch):
    """A projected service-account token file named by KF_PIPELINES_SA_TOKEN_PATH."""
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    monkeypatch.setenv(remote.SA_TOKEN_ENV, str(path))
    return path


def run_cli(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def submit_argv(api: KFPAPIServer | str, *extra: str) -> list[str]:
    host = api if isinstance(api, str) else api.url
    return ["pipeline", "submit", "predict", "--host", host, "--adapter", "examples.digits.adapter:DigitsAdapter",
            "--model", "digits-mlp", "--dataset", "digits", "--profile", "cpu", "--image", "img:1", *extra]


# --- credentials and namespace ----------------------------------------------------------


def test_runs_with_the_projected_token_sends_bearer_and_namespace(kubeflow, sa_token, capsys):
    code, out, err = run_cli(["pipeline", "runs", "--host", kubeflow.url, "--namespace", NS], capsys)
    assert code == 0, err
    assert out.strip() == "no runs"
    (listing,) = kubeflow.calls("GET", "/apis/v2beta1/runs")
    assert listing.authorization == f"Bearer {TOKEN}" and listing.query["namespace"] == NS
    assert all(r.authorization == f"Bearer {TOKEN}" for r in kubeflow.requests), "the healthz probe too"
    assert TOKEN not in out + err


@pytest.mark.parametrize("how", ["--token", "env"])
def test_runs_with_a_bearer_token_sends_it_and_the_namespace(kubeflow, how, monkeypatch, capsys):
    argv = ["pipeline", "runs", "--host", kubeflow.url, "--namespace", NS]
    if how == "--token":
        argv += ["--token", TOKEN]
    else:
        monkeypatch.setenv(remote.TOKEN_ENV, TOKEN)
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    (listing,) = kubeflow.calls("GET", "/apis/v2beta1/runs")
    assert listing.authorization == f"Bearer {TOKEN}" and listing.query["namespace"] == NS
    assert TOKEN not in out + err


def test_an_explicit_token_wins_over_the_environment_and_the_token_file(kubeflow, sa_token, monkeypatch, capsys):
    sa_token.write_text("stale-file-token")
    monkeypatch.setenv(remote.TOKEN_ENV, "stale-env-token")
    code, _, err = run_cli(["pipeline", "runs", "--host", kubeflow.url, "--namespace", NS, "--token", TOKEN], capsys)
    assert code == 0, err
    assert {r.authorization for r in kubeflow.requests} == {f"Bearer {TOKEN}"}


def test_the_token_file_is_read_again_for_each_request(sa_token):
    """The kubelet rotates projected tokens: a long-lived client must send the current one."""
    with KFPAPIServer(multi_user=True, allowed_namespaces=(NS,)) as api:
        conn = remote.connect(api.url, NS)
        sa_token.write_text("rotated-token")
        with conn.errors():
            remote.list_runs(conn.client, namespace=NS)
        assert api.calls("GET", "/apis/v2beta1/runs")[0].authorization == "Bearer rotated-token"


def test_standalone_kfp_gets_no_credentials_and_no_namespace(capsys):
    with KFPAPIServer() as api:
        code, _, err = run_cli(submit_argv(api), capsys)
        assert code == 0, err
        assert all(r.authorization is None for r in api.requests)
        (exp,) = api.calls("POST", "/apis/v2beta1/experiments")
        assert not exp.body.get("namespace")
        assert all("namespace" not in r.query for r in api.requests)


def test_submit_creates_the_experiment_and_run_in_the_namespace(kubeflow, sa_token, capsys):
    code, out, err = run_cli(submit_argv(kubeflow, "--namespace", NS, "--experiment", "nightly"), capsys)
    assert code == 0, err
    lookup = kubeflow.calls("GET", "/apis/v2beta1/experiments")[0]
    assert lookup.query["namespace"] == NS, "the experiment is looked up in the namespace"
    (exp_post,) = kubeflow.calls("POST", "/apis/v2beta1/experiments")
    assert exp_post.body["namespace"] == NS and exp_post.body["display_name"] == "nightly"
    (run_post,) = kubeflow.calls("POST", "/apis/v2beta1/runs")
    assert kubeflow.experiments[run_post.body["experiment_id"]]["namespace"] == NS
    assert all(r.authorization == f"Bearer {TOKEN}" for r in kubeflow.requests)
    assert out.startswith("run_id: ")


def test_schedule_lists_and_creates_recurring_runs_in_the_namespace(kubeflow, sa_token, capsys):
    argv = ["pipeline", "schedule", "train", "--cron", "0 2 * * *", "--name", "nightly-train", "--max-concurrency", "2",
            *submit_argv(kubeflow, "--namespace", NS)[3:]]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    (listing,) = kubeflow.calls("GET", "/apis/v2beta1/recurringruns")
    assert listing.query["namespace"] == NS
    (post,) = kubeflow.calls("POST", "/apis/v2beta1/recurringruns")
    assert kubeflow.experiments[post.body["experiment_id"]]["namespace"] == NS
    assert post.body["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *" and str(post.body["max_concurrency"]) == "2"
    assert post.authorization == f"Bearer {TOKEN}"
    assert "created recurring run nightly-train" in out


# --- clear errors -----------------------------------------------------------------------


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


def test_multi_user_without_namespace_says_to_pass_it(kubeflow, sa_token, capsys):
    code, _, err = run_cli(["pipeline", "runs", "--host", kubeflow.url], capsys)
    line = one_line(err)
    assert code == 1 and kubeflow.url in line and "multi-user" in line and "--namespace" in line
    assert not kubeflow.calls(), "nothing but the probe was sent"


def test_401_without_credentials_names_the_host_and_the_ways_to_authenticate(kubeflow, capsys):
    code, _, err = run_cli(["pipeline", "runs", "--host", kubeflow.url, "--namespace", NS], capsys)
    line = one_line(err)
    assert code == 1 and kubeflow.url in line and "401" in line
    for hint in ("--token", remote.TOKEN_ENV, remote.SA_TOKEN_PATH, remote.TOKEN_AUDIENCE):
        assert hint in line


def test_401_with_a_wrong_token_says_check_the_token_and_never_prints_it(kubeflow, capsys):
    wrong = "wrong-token-Xy7"
    code, out, err = run_cli(["pipeline", "runs", "--host", kubeflow.url, "--namespace", NS, "--token", wrong], capsys)
    line = one_line(err)
    assert code == 1 and kubeflow.url in line and "401" in line and "--token" in line and "expired" in line
    assert wrong not in out + err and TOKEN not in out + err


def test_403_names_the_namespace_and_the_role_binding(kubeflow, sa_token, capsys):
    code, out, err = run_cli(submit_argv(kubeflow, "--namespace", "someone-else"), capsys)
    line = one_line(err)
    assert code == 1 and kubeflow.url in line and "403" in line and "someone-else" in line
    assert remote.EDIT_CLUSTER_ROLE in line and "RoleBinding" in line
    assert TOKEN not in out + err
    assert not kubeflow.runs


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["runs", "submit"])
def test_an_unreachable_host_is_one_line_naming_it(command, capsys):
    host = f"http://127.0.0.1:{closed_port()}"
    argv = ["pipeline", "runs", "--host", host] if command == "runs" else submit_argv(host)
    started = time.monotonic()
    code, _, err = run_cli(argv, capsys)
    line = one_line(err)
    assert code == 1 and f"cannot reach the KFP API at {host}" in line and "--host" in line
    assert "MaxRetryError" not in line and time.monotonic() - started < 10


def test_a_missing_token_file_names_the_variable(kubeflow, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(remote.SA_TOKEN_ENV, str(tmp_path / "nope"))
    code, _, err = run_cli(["pipeline", "runs", "--host", kubeflow.url, "--namespace", NS], capsys)
    line = one_line(err)
    assert code == 1 and remote.SA_TOKEN_ENV in line and str(tmp_path / "nope") in line
    assert not kubeflow.requests


def test_a_host_without_scheme_is_rejected_before_any_request(capsys):
    code, _, err = run_cli(["pipeline", "runs", "--host", "ml-pipeline:8888"], capsys)
    assert code == 1 and "--host" in one_line(err)


# --- the backend floor ------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["2.5.0", "2.4.1", "v2.13.9"])
def test_submit_refuses_a_backend_older_than_the_floor(tag, capsys):
    with KFPAPIServer(tag_name=tag) as api:
        code, _, err = run_cli(submit_argv(api), capsys)
        line = one_line(err)
        assert code == 1 and api.url in line and tag in line and ">= 2.14" in line and "docs/pipelines.md" in line
        assert not api.calls("POST")
        # listing runs works on any backend
        assert main(["pipeline", "runs", "--host", api.url]) == 0


@pytest.mark.parametrize("tag,warns", [("2.14.3", True), ("2.16.1", True), ("2.17.0", False), ("unknown", False), ("master", False)])
def test_submit_accepts_the_floor_and_newer_and_warns_before_2_17(tag, warns, capsys, caplog):
    with KFPAPIServer(tag_name=tag) as api:
        code, _, err = run_cli(submit_argv(api), capsys)
        assert code == 0, err
        assert len(api.runs) == 1
    warned = [r for r in caplog.records if "13322" in r.getMessage()]
    assert bool(warned) is warns


def test_submit_help_states_the_backend_floor(capsys):
    with pytest.raises(SystemExit):
        main(["pipeline", "submit", "train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "KFP backend >= 2.14" in text and "2.17" in text and "docs/pipelines.md" in text


def test_a_token_given_on_the_command_line_is_redacted_from_every_later_message():
    from adapter_base.secrets import redact

    token = "cli-token-value-1f2e3d"
    auth = remote.resolve_auth(token, env={})
    assert auth.kind == "bearer" and repr(token) not in repr(auth)
    assert redact(f"server said: invalid token {token}") == "server said: invalid token ***"
