"""What the manifests ask of the code: the CLI accepts their command lines, the steps read their ConfigMap/Secret."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex

import pytest

from manifests_support import (
    CRONJOBS,
    KFP_NAMESPACE,
    OUR_NAMESPACE,
    OVERLAYS,
    REPO,
    STORE_CONFIGMAP,
    STORE_SECRET,
    container_env,
    expand,
    find,
    one,
    render,
)


def parse(argv: list[str]):
    """``argv`` (without the program name) parsed by the real `model-adapter` parser, or a failure naming why."""
    from adapter_base.cli.main import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return build_parser().parse_args(argv)
        except SystemExit:
            pass
    pytest.fail(f"`model-adapter {shlex.join(argv)}` is rejected by the CLI:\n{err.getvalue()}", pytrace=False)


@pytest.mark.parametrize("rel,name", [(rel, name) for rel in sorted(OVERLAYS) for name in CRONJOBS])
def test_the_cli_accepts_the_cronjob_command_line(rel, name):
    objs = render(rel)
    (container,) = one(objs, "CronJob", name)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = container_env(objs, OUR_NAMESPACE, container)
    argv = [expand(a, env) for a in container["command"] + container["args"]]
    assert argv[0] == "model-adapter"
    parse(argv[1:])


def test_the_cli_accepts_the_bootstrap_and_kind_test_command_lines():
    """The kind bootstrap Job and tests/kind drive the same CLI."""
    source = (REPO / "manifests" / "overlays" / "kind" / "bootstrap.py").read_text()
    assert 'run("dataset", "import", "digits", "--name", dataset)' in source
    assert 'run("model", "create", "--name", model, "--dataset", dataset, "--adapter", adapter)' in source
    store = "s3://model-adapter/store"
    parse(["dataset", "import", "digits", "--name", "digits", "--store", store])
    parse(["model", "create", "--name", "digits-mlp", "--dataset", "digits",
           "--adapter", "examples.digits.adapter:DigitsAdapter", "--store", store])
    common = ["--host", "http://127.0.0.1:8888", "--adapter", "examples.digits.adapter:DigitsAdapter",
              "--model", "digits-mlp", "--dataset", "digits", "--store", store, "--profile", "gpu-pool",
              "--experiment", "kind-tests", "--image", "model-adapter:dev"]
    parse(["pipeline", "submit", "train", *common, "--wait"])
    parse(["pipeline", "submit", "predict", *common, "--shards", "3", "--wait"])


@pytest.fixture(scope="module")
def store_env():
    try:
        return importlib.import_module("pipelines.store_env")
    except ModuleNotFoundError as exc:
        pytest.fail(f"pipelines/store_env.py (how steps get the store settings) cannot be imported: {exc}", pytrace=False)


@pytest.mark.parametrize("rel", [r for r in sorted(OVERLAYS) if OVERLAYS[r]["run_env"]])
def test_pipeline_steps_find_the_store_configmap_and_secret_where_kfp_runs_them(rel, store_env):
    objs = render(rel)
    assert store_env.STORE_CONFIG_MAP == STORE_CONFIGMAP and store_env.STORE_SECRET == STORE_SECRET
    data = one(objs, "ConfigMap", STORE_CONFIGMAP, KFP_NAMESPACE)["data"]
    missing = sorted(set(store_env.STORE_CONFIG_KEYS) - set(data))
    assert not missing, f"ConfigMap {KFP_NAMESPACE}/{STORE_CONFIGMAP} lacks keys the steps read: {missing}"
    for secret in find(objs, "Secret", STORE_SECRET, KFP_NAMESPACE):
        keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
        assert set(store_env.STORE_SECRET_KEYS) <= keys
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", k) for k in store_env.STORE_CONFIG_KEYS + store_env.STORE_SECRET_KEYS)
