"""Credentials in URIs, run parameters, warnings and thread tracebacks never leak.

Every check runs the real ``model-adapter`` console script (or a pipeline step's own
setup) in a subprocess with distinctive planted values, and searches all of its output.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

from adapter_base import Registry
from adapter_base.secrets import holds_secret, redact
from reliability_support import REPO, ScriptedAdapter, run_cli, scripted, subprocess_env

pytestmark = [pytest.mark.reliability]

#: Set in a CLI subprocess to make ``LeakyAdapter.load`` raise (after its warning and thread).
ENV_RAISE_IN_LOAD = "RELIABILITY_LEAKY_RAISE"


class LeakyAdapter(ScriptedAdapter):
    """Leaks the store credentials the ways logging redaction does not see: a warning, an
    uncaught error in a thread it starts, and (with ``$RELIABILITY_LEAKY_RAISE``) an error
    escaping ``load``."""

    def load(self, local_path: str, **kwargs: Any) -> None:
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
        key = os.environ.get("AWS_ACCESS_KEY_ID")
        warnings.warn(f"deprecated login {key}:{secret}, also at https://backup:{uuid.uuid4().hex}@example.com/b", UserWarning, stacklevel=1)

        def background() -> None:
            raise RuntimeError(f"uploader thread died holding {secret}")

        thread = threading.Thread(target=background, name="leaky-uploader")
        thread.start()
        thread.join()
        if os.environ.get(ENV_RAISE_IN_LOAD):
            raise RuntimeError(f"could not load with secret {secret}")
        super().load(local_path, **kwargs)


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Distinctive store credentials in the environment (inherited by the subprocesses)."""
    token = uuid.uuid4().hex[:12]
    values = {"AWS_ACCESS_KEY_ID": f"KEYIDplanted{token}", "AWS_SECRET_ACCESS_KEY": f"SECRET/planted+{token}"}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    return values


def assert_no_leak(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    output = result.stdout + result.stderr
    leaked = [s for s in secrets if s in output]
    assert not leaked, f"leaked {leaked}:\n{output}"


# --------------------------------------------------------------------------- store URIs

#: (URI template, what must not show): ``{key}``/``{secret}`` are filled in per test.
STORE_URIS = [
    "https://{key}:{secret}@s3.example.com/bucket",
    "http://{key}:{secret}@127.0.0.1:9/bucket/prefix",
    "minio://{key}:{secret}@minio.local/bucket",
    "s3:/{key}:{secret}@bucket/prefix",  # the typo: one slash
    "s3://{key}:{secret}@bucket/prefix",
    "s3://{secret}@bucket",
]


@pytest.mark.parametrize("template", STORE_URIS)
def test_a_store_uri_with_credentials_is_refused_without_echoing_them(template: str, tmp_path: Path) -> None:
    key, secret = f"AKIA{uuid.uuid4().hex[:12].upper()}", f"wJal/rXUtn+{uuid.uuid4().hex}"
    uri = template.format(key=key, secret=secret)
    env = {k: v for k, v in subprocess_env().items() if not k.startswith("AWS_")}  # not known secrets: only the URI says it
    for args in (["model", "list", "--store", uri], ["--debug", "dataset", "list", "--store", uri]):
        result = run_cli(args, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert_no_leak(result, key, secret)
        assert "must not embed credentials" in result.stderr and "AWS_SECRET_ACCESS_KEY" in result.stderr, result.stderr
    # The same through $MODEL_ADAPTER_STORE.
    result = run_cli(["model", "list"], env={**env, "MODEL_ADAPTER_STORE": uri})
    assert result.returncode == 1 and "must not embed credentials" in result.stderr, result.stderr
    assert_no_leak(result, key, secret)
    assert not list(tmp_path.iterdir()) and not Path("s3:").exists()  # nothing was created for it either


def test_redact_masks_the_user_part_of_every_url_and_nothing_else() -> None:
    cases = {
        "https://KEY:SECRET@host/bucket": "https://***@host/bucket",
        "error: 's3:/KEY:SE/CR+ET@bucket/p' names no bucket": "error: 's3:/***@bucket/p' names no bucket",
        "minio://user@h and http://u:p@h2:9000/x": "minio://***@h and http://***@h2:9000/x",
        "https://me@corp.com:pa/ss@host/b": "https://***@host/b",  # unencoded '@' and '/' in the userinfo
        "s3://wJal/rXUtn+bPx@bucket": "s3://***@bucket",  # an AWS-style secret alone, with its '/'
        "file:///data/team@2024/store": "file:///data/team@2024/store",
        "https://host/path and python:3.11@sha256:ab": "https://host/path and python:3.11@sha256:ab",
        "mail me: a@b.org": "mail me: a@b.org",
    }
    for text, expected in cases.items():
        assert redact(text) == expected, text
        assert holds_secret(text) == (text != expected)
    # Linear time on hostile input (a log line an adapter controls).
    for hostile in ("https://" + "a:" * 200_000 + "@", "a:/" * 300_000 + "@", "https://a:@" * 100_000, "x." * 500_000 + "@"):
        start = time.perf_counter()
        redact(hostile)
        assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------- run parameters and configuration


class _RecordingKfpApi(http.server.BaseHTTPRequestHandler):
    """Answers 503 to everything and records each request (method, path, body)."""

    seen: list[str]

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self.seen.append(f"{self.command} {self.path} {body}")
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = _any

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def kfp_api() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server standing for the KFP API: its URL and the requests it received."""
    seen: list[str] = []
    handler = type("Handler", (_RecordingKfpApi,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_pipeline_submit_and_schedule_refuse_credentials_before_sending_anything(
    planted: dict[str, str], kfp_api: tuple[str, list[str]]
) -> None:
    host, seen = kfp_api
    secret = planted["AWS_SECRET_ACCESS_KEY"]
    inline = f"zz{uuid.uuid4().hex}"
    base = ["--host", host, "--adapter", "reliability_support:ScriptedAdapter", "--model", "m", "--dataset", "d"]
    attempts = {
        "store with user:password": ["pipeline", "submit", "train", *base, "--store", f"s3://AKIAX:{inline}@bucket/p"],
        "store with the typo s3:/": ["pipeline", "submit", "predict", *base, "--store", f"s3:/AKIAX:{inline}@bucket/p"],
        "config equal to the secret key": ["pipeline", "submit", "train", *base, "--config", f"api_key={secret}"],
        "config holding the secret key": ["pipeline", "submit", "train", *base, "--config", f'auth={{"header": "Bearer {secret}"}}'],
        "config with a URL with a password": ["pipeline", "submit", "train", *base, "--config", f"weights=https://u:{inline}@h/w.pt"],
        "schedule": ["pipeline", "schedule", "train", "--cron", "0 3 * * *", "--name", "nightly", *base, "--config", f"k={secret}"],
    }
    for what, args in attempts.items():
        result = run_cli(args)
        assert result.returncode == 1, f"{what}: {result.stdout}{result.stderr}"
        assert_no_leak(result, secret, inline)
        assert "credential" in result.stderr and "AWS_SECRET_ACCESS_KEY" in result.stderr, f"{what}: {result.stderr}"
        assert not seen, f"{what}: requests reached the KFP API: {seen}"
    assert "--config.api_key" in run_cli(attempts["config equal to the secret key"]).stderr  # names the key, not the value


def test_model_create_refuses_a_configuration_value_holding_a_secret(planted: dict[str, str], tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    secret = planted["AWS_SECRET_ACCESS_KEY"]
    args = ["model", "create", "--name", "m", "--adapter", "reliability_support:ScriptedAdapter", "--labels", "a", "--store", store]
    result = run_cli([*args, "--config", "lr=0.1", f"token={secret}"])
    assert result.returncode == 1 and "--config.token" in result.stderr and "credential" in result.stderr, result.stderr
    assert_no_leak(result, secret)
    stored = [p for p in Path(store).rglob("*") if p.is_file()] if Path(store).exists() else []
    assert not [p for p in stored if secret in p.read_text("utf-8", "replace")]
    # Ordinary values are fine, and so is the access key id (an identifier, often a plain word).
    assert run_cli([*args, "--config", "lr=0.1", f"owner={planted['AWS_ACCESS_KEY_ID']}"]).returncode == 0


def test_only_credentials_are_refused_not_words_that_look_like_the_access_key_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "store-dev")  # the kind overlay's development values
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "store-dev-secret")
    assert not holds_secret("s3://models/store-dev/v1") and not holds_secret(str(tmp_path / "store-dev"))
    assert holds_secret("Bearer store-dev-secret") and holds_secret("s3://store-dev:x@bucket")
    assert redact("store-dev / store-dev-secret") == "*** / ***"  # both are still masked in output
    (tmp_path / "store-dev").mkdir()  # an existing store (read-only commands never create one)
    result = run_cli(["model", "list", "--store", str(tmp_path / "store-dev")])
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- warnings and thread errors


def test_cli_redacts_warnings_and_uncaught_errors_of_adapter_threads(planted: dict[str, str], tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    with Registry.open(store) as registry:
        scripted(registry, [{}, {}])
    args = ["predict", "scripted", "--adapter", "test_reliability_credentials:LeakyAdapter", "--dataset", "scripted", "--store", store]
    result = run_cli(args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UserWarning: deprecated login ***:***, also at https://***@example.com/b" in result.stderr, result.stderr
    assert "Exception in thread leaky-uploader" in result.stderr and "uploader thread died holding ***" in result.stderr
    assert_no_leak(result, *planted.values())
    assert "2 predicted" in result.stdout

    # --debug lets the error escape main: its traceback is redacted too.
    result = run_cli(["--debug", *args], env=subprocess_env({ENV_RAISE_IN_LOAD: "1"}))
    assert result.returncode == 1 and "RuntimeError: could not load with secret ***" in result.stderr, result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert_no_leak(result, *planted.values())


#: What a pipeline step runs first (``configure_step_logging``), then an adapter's leaks.
STEP = """
import logging, os, threading, warnings
from adapter_base.steps.shared import configure_step_logging

configure_step_logging()
secret = os.environ["AWS_SECRET_ACCESS_KEY"]
warnings.warn(f"step warning with {secret} and s3://AKIAX:{secret}x@bucket")
logging.getLogger("user.adapter").warning("logged %s", secret)

def fail():
    raise ValueError(f"thread failed with {secret}")

thread = threading.Thread(target=fail, name="step-thread")
thread.start()
thread.join()
raise RuntimeError(f"step failed with {secret}")
"""


def test_pipeline_steps_redact_warnings_logs_and_uncaught_errors(planted: dict[str, str]) -> None:
    secret = planted["AWS_SECRET_ACCESS_KEY"]
    result = subprocess.run([sys.executable, "-c", STEP], env=subprocess_env(), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "UserWarning: step warning with *** and s3://***@bucket" in err, err
    assert "logged ***" in err
    assert "Exception in thread step-thread" in err and "ValueError: thread failed with ***" in err
    assert "RuntimeError: step failed with ***" in err
    assert_no_leak(result, secret)


def test_a_log_line_written_while_a_progress_bar_is_open_is_redacted(tmp_path: Path) -> None:
    """While a bar is open its log lines go through tqdm's handler instead of the console's (logging_redirect_tqdm):
    that handler must redact as the console's does."""
    script = (
        "import logging, sys\n"
        "from adapter_base.secrets import install_redaction\n"
        "logging.basicConfig(level=logging.WARNING, stream=sys.stderr)\n"
        "install_redaction()\n"
        "from adapter_base.progress import progress_bar\n"
        "bar = progress_bar('predict', 2)\n"
        "logging.getLogger('my_adapter').warning('token is SECRETVALUE-9f3a-while-the-bar-runs')\n"
        "bar.update(); bar.close()\n"
    )
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "SECRETVALUE-9f3a-while-the-bar-runs", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "token is ***" in proc.stderr and "SECRETVALUE" not in proc.stderr + proc.stdout
