"""Security: credentials stay secret, downloads stay inside their directory, nothing from
the store is unpickled by the framework, and the image runs as a non-root user.

Credentials come only from the environment (``AWS_*``), which in a cluster is filled from
a Kubernetes Secret; every error path is run with distinctive planted values and every
file written (store, home, reports, compiled pipelines) and every log line is searched.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import logging
import os
import pickle
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from adapter_base import Registry, StoreError, ValidationError, open_store
from adapter_base.entities.model import ArtifactFile
from adapter_base.registry import layout
from adapter_base.registry.artifacts import download_tree
from adapter_base.registry.checkpoints import CheckpointSync
from adapter_base.secrets import install_log_redaction
from adapter_base.storage import LocalStore, ObjectInfo
from adapter_base.storage.digest import sha256_file
from reliability_support import REPO, SlowAdapter, dataset_with_model, run_cli, scripted

pytestmark = [pytest.mark.reliability]

SECRET_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN")
SOURCES = [REPO / "adapter_base", REPO / "components", REPO / "pipelines"]


@pytest.fixture
def planted(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Distinctive (and wrong) S3 credentials in the environment, for the session server."""
    token = uuid.uuid4().hex[:12]
    values = {
        "AWS_SECRET_ACCESS_KEY": f"SECRETplanted{token}",
        "AWS_ACCESS_KEY_ID": f"KEYIDplanted{token}",
        "AWS_SESSION_TOKEN": f"TOKENplanted{token}",
    }
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    return values


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path


def leaks(values: dict[str, str], text: str) -> list[str]:
    return [var for var, value in values.items() if value in text]


# --------------------------------------------------------------------------- credentials


@pytest.mark.s3
def test_credentials_never_reach_logs_errors_reports_records_or_pipelines(
    planted: dict[str, str], s3_bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    home = Path(os.environ["MODEL_ADAPTER_HOME"])
    out = tmp_path / "out"
    out.mkdir()
    store_uri = str(tmp_path / "store")
    caplog.set_level(logging.DEBUG)

    # In-process: predict (an adapter error carries the secret), evaluate, train (raises with it).
    with Registry.open(store_uri) as registry:
        ds, items, model, adapter = scripted(registry, [{}, {}, {"batch": "leak"}, {"batch": "leak"}], train=True)
        report = adapter.predict_dataset(ds)
        assert report.failed == 2 and "***" in report.failures[0].error  # the leak happened, and was redacted
        result = adapter.evaluate_model(model, ds)
        assert result.prediction.failed == 2
        with pytest.raises(RuntimeError):
            adapter.train_model(model)
        failed = registry.get_model(model.id)
        assert failed.status == "failed" and "***" in failed.status_message

    # In-process S3 with the planted (rejected) credentials.
    with pytest.raises(StoreError) as info, Registry.open(f"s3://{s3_bucket}/planted") as rejected:
        rejected.list_datasets()
    assert "credentials were rejected" in str(info.value)
    assert not leaks(planted, str(info.value) + repr(info.value))

    # Real processes: predict (the adapter also logs the credentials), train, S3, pipelines.
    runs = {
        "predict": ["-v", "predict", "scripted", "--dataset", "scripted", "--store", store_uri, "--report"],
        "evaluate": ["evaluate", "scripted", "--dataset", "scripted", "--subset", "train", "--store", store_uri],
        "train": ["--verbose", "train", "scripted", "--store", store_uri],
        "s3": ["dataset", "list", "--store", f"s3://{s3_bucket}/planted"],
        "compile-predict": ["pipeline", "compile", "predict", "-o", str(out / "predict.yaml")],
        "compile-train": ["pipeline", "compile", "train", "-o", str(out / "train.yaml")],
    }
    with Registry.open(store_uri) as registry:
        for item in items[:2]:
            item.metadata["batch"] = "log_leak"
            registry.update_item(item)
    for name, args in runs.items():
        result = run_cli(args)
        (out / f"{name}.stdout").write_text(result.stdout)
        (out / f"{name}.stderr").write_text(result.stderr)
        expected = 0 if name.startswith("compile") else 1
        assert result.returncode == expected, f"{name}: {result.stdout}{result.stderr}"
    assert "talking to the backend as ***:***" in (out / "predict.stderr").read_text()
    assert "credentials were ***" in (out / "train.stderr").read_text()
    assert "credentials were rejected" in (out / "s3.stderr").read_text()
    assert (out / "predict.yaml").stat().st_size > 1000 and (out / "train.yaml").stat().st_size > 1000

    searched = list(files_under(tmp_path, home))
    assert any(p.name == "prediction-report.json" for p in searched) and any(p.name == "report.html" for p in searched)
    found = {str(p): leaks(planted, p.read_bytes().decode("utf-8", "replace")) for p in searched}
    assert not {p: v for p, v in found.items() if v}, "credentials written to files"
    assert not leaks(planted, caplog.text), "credentials in the log"
    captured = capfd.readouterr()
    assert not leaks(planted, captured.out + captured.err), "credentials on stdout/stderr"


def test_a_failing_log_handler_dumps_no_credential(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A handler whose stream died makes logging dump the exception chain; ours is redacted."""
    secret = f"SECRETdump{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    stream.close()  # a closed pipe, as when a pod's log collector went away
    logger = logging.getLogger(f"test.dump.{uuid.uuid4().hex[:6]}")
    logger.addHandler(handler)
    logger.propagate = False
    install_log_redaction(logger)
    try:
        raise RuntimeError(f"adapter failed with {secret}")
    except RuntimeError:
        logger.error("training failed: %s", "see above")
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err and "I/O operation on closed file" in err, err
    assert "adapter failed with ***" in err and "training failed: %s" in err
    assert secret not in err


def test_credentials_come_only_from_the_environment_or_a_kubernetes_secret(tmp_path: Path) -> None:
    # No command-line option takes a credential (it would show in process lists and pipeline specs).
    from adapter_base.cli.main import build_parser

    options: list[str] = []

    def walk(parser: Any) -> None:
        for action in parser._actions:
            options.extend(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for subparser in action.choices.values():
                    walk(subparser)

    walk(build_parser())
    assert "--store" in options and "--token" in options
    # The one exception: a KFP bearer token from a laptop (`pipeline submit|schedule|runs --token`), as
    # kfp users expect; $MODEL_ADAPTER_KFP_TOKEN and the projected token file keep it out of argv.
    assert not [o for o in options if re.search(r"secret|password|access.?key|token|credential", o, re.I) and o != "--token"]

    # Not in a store URI or an endpoint URL either: refused without echoing them.
    for uri in ("s3://AKIAXYZ:hunter2secret@bucket/p", "s3://hunter2secret@bucket"):
        with pytest.raises(StoreError) as info:
            open_store(uri)
        assert "hunter2secret" not in str(info.value)
    from adapter_base.storage.s3 import parse_endpoint

    with pytest.raises(StoreError) as info:
        parse_endpoint("http://AKIAXYZ:hunter2secret@127.0.0.1:9000")
    assert "hunter2secret" not in str(info.value)

    # The compiled pipelines map the credentials from the Secret into each step that touches the store.
    if not (REPO / "pipelines").is_dir():  # pragma: no cover - pipelines are part of the repository
        pytest.skip("no pipelines/ package to compile")
    for pipeline in ("predict", "train"):
        target = tmp_path / f"{pipeline}.yaml"
        result = run_cli(["pipeline", "compile", pipeline, "-o", str(target)])
        assert result.returncode == 0, result.stderr
        spec, platform = list(yaml.safe_load_all(target.read_text()))
        params = spec["root"].get("inputDefinitions", {}).get("parameters", {})
        assert not [p for p in params if re.search(r"secret|password|access.?key|token|credential", p, re.I)], params
        k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        executors = spec["deploymentSpec"]["executors"]
        for name, executor in executors.items():
            env = {e["name"] for e in executor.get("container", {}).get("env", [])}
            assert not env & set(SECRET_VARS), f"{pipeline}/{name} sets credentials as plain env values"
        with_store = [n for n, e in k8s.items() if e.get("configMapAsEnv")]
        assert with_store, f"no step of {pipeline} reads the store settings"
        for name in with_store:
            secrets = k8s[name].get("secretAsEnv", [])
            mapped = {m["envVar"] for s in secrets for m in s["keyToEnv"]}
            assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= mapped, f"{pipeline}/{name} gets no credentials from the Secret"
            assert {s["secretName"] for s in secrets} == {"model-adapter-store-credentials"}


# --------------------------------------------------------------------------- downloads


@pytest.mark.s3
@pytest.mark.parametrize("evil", ["../../escaped.txt", "sub/../../../escaped.txt", "/tmp/escaped-{token}.txt"])
def test_a_manifest_with_an_escaping_path_cannot_write_outside_the_target(s3_registry: Registry, tmp_path: Path, evil: str) -> None:
    evil = evil.format(token=uuid.uuid4().hex[:8])
    _, _, model = dataset_with_model(s3_registry, 1)
    store = s3_registry.store
    target = tmp_path / "a" / "b" / "target"
    before = set(files_under(tmp_path))
    good = model.artifacts.files[0].to_dict()
    row = {"path": evil, "size": 4, "sha256": "0" * 64}

    record = store.get_json(layout.model_record(model.id))
    record["artifacts"]["files"].append(row)
    store.put_json(layout.model_record(model.id), record)
    with pytest.raises(ValidationError) as info:
        SlowAdapter(registry=s3_registry).load_from_model(model.id, local_path=str(target))
    assert info.value.field == "path" and repr(evil) in str(info.value), str(info.value)

    # The same in a version's own manifest, read when that version is asked for.
    manifest = {"model_id": model.id, "version": 2, "files": [good, row], "created_at": "2026-01-01T00:00:00Z"}
    store.put_json(layout.manifest(model.id, 2), manifest)
    record["artifacts"]["files"].pop()
    store.put_json(layout.model_record(model.id), record)
    with pytest.raises(ValidationError, match="ArtifactFile.path"):
        s3_registry.download_artifacts(s3_registry.get_model(model.id), target, version=2)

    assert set(files_under(tmp_path)) == before
    assert not Path(evil).is_absolute() or not Path(evil).exists()


@pytest.mark.s3
def test_a_tampered_artifact_fails_its_digest_check_and_never_appears(s3_registry: Registry, tmp_path: Path) -> None:
    _, _, model = dataset_with_model(s3_registry, 1, configuration={"artifact_files": 2, "artifact_bytes": 1000})
    victim = model.artifacts.files[1]
    key = layout.artifact_file(model.id, model.version, victim.path)
    s3_registry.store.put_bytes(key, b"swapped by someone" + s3_registry.store.get_bytes(key)[18:])
    target = tmp_path / "target"
    with pytest.raises(StoreError, match=f"digest mismatch for {re.escape(repr(key))}"):
        SlowAdapter(registry=s3_registry).load_from_model(model.id, local_path=str(target))
    assert not (target / victim.path).exists() and not list(target.rglob("*.partial"))


def test_download_tree_refuses_escaping_rows_and_symlinks_even_unvalidated(local_registry: Registry, tmp_path: Path) -> None:
    """Defence in depth: rows that skipped validation, and a symlink planted in the target."""
    store = local_registry.store
    store.put_bytes("files/ok.txt", b"fine")
    digest = sha256_file(store.root / "files" / "ok.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "link").symlink_to(outside, target_is_directory=True)
    for rel in ("../escaped.txt", str(outside / "abs.txt"), "link/escaped.txt"):
        row = object.__new__(ArtifactFile)
        row.path, row.size, row.sha256 = rel, 4, digest
        with pytest.raises(ValidationError, match="escapes the target directory"):
            download_tree(store, [row], lambda _rel: "files/ok.txt", target, local_registry.pool)
    assert list(outside.iterdir()) == [] and not (tmp_path / "escaped.txt").exists()


def test_checkpoints_listed_with_escaping_keys_are_not_restored_outside(tmp_path: Path) -> None:
    """A store whose listing returns ``../`` keys (S3 keys are arbitrary strings)."""

    class HostileStore(LocalStore):
        def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
            yield ObjectInfo(key=prefix + "../../../escaped.bin", size=1)

        def get_file(self, key: str, path: str | Path) -> None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(b"x")

    local = tmp_path / "run" / "checkpoints"
    local.mkdir(parents=True)
    with ThreadPoolExecutor(2) as pool, pytest.raises(ValidationError, match="escapes the target directory"):
        CheckpointSync(HostileStore(tmp_path / "store"), "m1", local, pool).restore()
    assert not [p for p in tmp_path.rglob("escaped.bin")]


@pytest.mark.parametrize(
    ("row", "generations", "names"),
    [
        ({"path": "../../escaped.bin", "size": 1, "sha256": "0" * 64}, {"../../escaped.bin": 1}, "path"),
        ({"path": "/etc/escaped.bin", "size": 1, "sha256": "0" * 64}, {"/etc/escaped.bin": 1}, "path"),
        ({"path": "ok.bin", "size": 1, "sha256": "0" * 64}, {"ok.bin": 7}, "newer than the set"),
        ({"path": "ok.bin", "size": 1, "sha256": "0" * 64}, {}, "one generation per file"),
    ],
)
def test_a_tampered_checkpoint_record_is_refused_naming_its_key(tmp_path: Path, row: dict, generations: dict, names: str) -> None:
    store = LocalStore(tmp_path / "store")
    key = layout.checkpoint_set("m1")
    store.put_json(key, {"model_id": "m1", "generation": 1, "files": [row], "generations": generations})
    local = tmp_path / "run" / "checkpoints"
    local.mkdir(parents=True)
    with ThreadPoolExecutor(2) as pool, pytest.raises(ValidationError, match=names) as info:
        CheckpointSync(store, "m1", local, pool).restore()
    assert key in str(info.value)
    assert store.exists(key), "a refused record is kept for the user to inspect"
    assert not [p for p in tmp_path.rglob("escaped.bin")] and list(local.iterdir()) == []


# --------------------------------------------------------------------------- pickles


FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _python_files() -> Iterator[Path]:
    for root in SOURCES + [REPO / "examples"]:
        if root.is_dir():
            yield from root.rglob("*.py")


def test_no_source_unpickles_anything() -> None:
    problems = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        framework = not path.is_relative_to(REPO / "examples")
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if framework and isinstance(node, ast.Import):
                problems += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
            if framework and isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
                problems.append(f"{where} imports from {node.module}")
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if name.split(".")[-1] in ("load", "loads") and name.split(".")[0] in FORBIDDEN_MODULES:
                problems.append(f"{where} calls {name}")
            if name.endswith("np.load") or name.endswith("numpy.load"):
                if kwargs.get("allow_pickle", "False") != "False":
                    problems.append(f"{where} calls {name} with allow_pickle")
            if name.endswith("torch.load") and kwargs.get("weights_only") != "True":
                problems.append(f"{where} calls torch.load without weights_only=True")
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load") and "SafeLoader" not in kwargs.get("Loader", ""):
                problems.append(f"{where} calls {name} without SafeLoader")
            if name.endswith("read_pickle"):
                problems.append(f"{where} calls {name}")
    assert not problems, "\n".join(problems)
    assert not re.search(r"pickle\.loads?\(|allow_pickle\s*=\s*True", "\n".join(p.read_text() for p in _python_files()))


class _Bomb:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (open, (str(self.marker), "w"))


def test_pickles_in_the_store_are_never_unpickled_by_the_framework(local_registry: Registry, tmp_path: Path) -> None:
    marker = tmp_path / "UNPICKLED"
    bomb = pickle.dumps(_Bomb(marker))
    ds, items, model = dataset_with_model(local_registry, 2, train=2, configuration={"epochs": 1})
    # as an artifact of the current version
    pkl_dir = tmp_path / "pkl"
    pkl_dir.mkdir()
    (pkl_dir / "model.pkl").write_bytes(bomb)
    (pkl_dir / "weights.json").write_text(json.dumps({"threshold": 128.0}))
    model = local_registry.upload_artifacts(model, pkl_dir)
    # as items, and as a checkpoint the next training restores
    local_registry.add_item(ds, "bomb/model.pkl", bomb)
    local_registry.add_item(ds, "bomb/fake.png", bomb)
    local_registry.store.put_bytes(layout.checkpoints_prefix(model.id) + "state.json", json.dumps({"epoch": 0}).encode())
    local_registry.store.put_bytes(layout.checkpoints_prefix(model.id) + "optimizer.pkl", bomb)

    adapter = SlowAdapter(registry=local_registry)
    path = adapter.load_from_model(model.id)
    assert (path / "model.pkl").read_bytes() == bomb  # downloaded as bytes, digest-verified
    report = adapter.predict_dataset(ds)
    assert report.failed == 2 and {f.stage for f in report.failures} == {"prepare"}
    adapter.train_model(model.id)
    assert not marker.exists(), "the framework unpickled data from the store"


# --------------------------------------------------------------------------- image


def test_the_image_runs_as_a_non_root_user() -> None:
    lines = []
    for raw in re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text()).splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    stages = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert stages, "no FROM in the Dockerfile"
    final = lines[stages[-1] :]
    users = [line.split(None, 1)[1].strip() for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage has no USER: it would run as root"
    user = users[-1]
    name, _, group = user.partition(":")
    assert name not in ("root", "0") and group not in ("root", "0"), f"USER {user}"
    assert name.isdigit(), f"USER {user}: a numeric uid lets Kubernetes enforce runAsNonRoot"
    assert any(f"--uid {name}" in line for line in final if "useradd" in line), "the uid is not created in the image"
    assert not [line for line in final if re.match(r"(ENV|ARG)\s.*(SECRET|PASSWORD|TOKEN|ACCESS_KEY)", line, re.I)]
