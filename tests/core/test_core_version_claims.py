"""A new version is compare-and-swap on the version it was made from, on every backend.

Writers racing from one base make exactly one version; the others are refused with
``VersionConflictError`` naming both versions and leave nothing visible. The number is
claimed before any file is written (``registry.version_claims``), without conditional
writes; a claim whose writer is gone is taken over, a live one is not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adapter_base import Registry, VersionConflictError
from adapter_base.registry import claims, layout, version_claims
from adapter_base.registry.version_claims import VersionClaim
from core_support import BRIGHT, DARK, BrightnessAdapter, brightness_dataset
from test_core_registry import V1, read_tree, write_tree


@pytest.fixture
def model_v1(registry: Registry, tmp_path: Path):
    model = registry.create_model("net", labels=["a", "b"])
    return registry.upload_artifacts(model, write_tree(tmp_path / "v1", V1))


def claim_keys(registry: Registry, model_id: str) -> list[str]:
    return [o.key for o in registry.store.list(layout.model_prefix(model_id) + "claims/")]


def race(n: int, work) -> list[object]:
    """Run ``work(i)`` on ``n`` threads released at once; each one's result or exception."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.mark.slow
def test_uploads_racing_from_one_base_make_exactly_one_version(registry, model_v1, tmp_path):
    trees = [write_tree(tmp_path / f"w{i}", {"weights.bin": f"writer {i}".encode() * 1000, f"only-{i}.txt": b"x"}) for i in range(4)]
    results = race(4, lambda i: registry.upload_artifacts(model_v1, trees[i]))

    won = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    assert len(won) == 1, results
    for r in results:
        if isinstance(r, BaseException):
            assert isinstance(r, VersionConflictError), repr(r)
            text = str(r)
            assert "\n" not in text and "version 1" in text and "version 2" in text, text
    current = registry.get_model(model_v1.id)
    assert current.version == 2 and current.artifacts == results[won[0]].artifacts
    registry.download_artifacts(current, tmp_path / "dl")  # digests verified: no mixed files
    assert read_tree(tmp_path / "dl") == read_tree(trees[won[0]])
    assert not registry.store.exists(layout.manifest(model_v1.id, 3)), "a refused writer left a version behind"
    assert claim_keys(registry, model_v1.id) == []


def test_a_save_from_an_older_version_is_refused_and_the_newer_one_stays(local_registry, tmp_path):
    """In process: two adapters load version 1; the second to save is refused, naming both versions."""
    model = local_registry.create_model("two-savers")
    first, second = BrightnessAdapter(registry=local_registry), BrightnessAdapter(registry=local_registry)
    first.load_from_model(model)
    first.save_to_model()
    first.load_from_model(model.id)
    second.load_from_model(model.id)
    first.model = {"threshold": 10.0}
    second.model = {"threshold": 20.0}
    assert first.save_to_model().version == 2
    with pytest.raises(VersionConflictError, match=r"at version 2, not at version 1") as info:
        second.save_to_model()
    assert "\n" not in str(info.value)
    current = local_registry.get_model(model.id)
    assert current.version == 2 and current.status == model.status
    fresh = BrightnessAdapter(registry=local_registry)
    fresh.load_from_model(model.id)
    assert fresh.model == {"threshold": 10.0}
    assert second.save_to_model(model=model.name).version == 3  # a name saves over the current version, on purpose


def test_training_overtaken_by_a_save_is_refused_and_leaves_the_status_alone(local_registry):
    """``train_model`` from version 1 while another adapter saves version 2: not saved, not failed, not left training."""
    ds = brightness_dataset(local_registry, sizes={"train": 2, "validation": 2})
    model = local_registry.create_model(
        "overtaken", labels=[BRIGHT, DARK], dataset_id=ds.id, subsets={"train": {"subset": "train"}, "validation": {"subset": "validation"}}
    )
    BrightnessAdapter(registry=local_registry).save_to_model(model=model)
    before = local_registry.get_model(model.id)

    class Overtaken(BrightnessAdapter):
        def train(self, data_path, output_path, **kwargs):
            other = BrightnessAdapter(registry=local_registry)
            other.load_from_model(model.id)
            other.model = {"threshold": 1.0}
            other.save_to_model()
            super().train(data_path, output_path, **kwargs)

    with pytest.raises(VersionConflictError, match=r"at version 2, not at version 1"):
        Overtaken(registry=local_registry).train_model(model.id)
    current = local_registry.get_model(model.id)
    assert current.version == 2 and (current.status, current.status_message) == (before.status, before.status_message)


def _claim(model_id: str, version: int, *, pid: int, run_id: str = "", age: float = 0.0, host: str | None = None) -> VersionClaim:
    return VersionClaim(
        model_id=model_id, version=version, base_version=version - 1, writer=f"w{pid}-{version}", run_id=run_id,
        host=host or claims.HOST, pid=pid, claimed_at=time.time() - age,
    )


def _put(registry: Registry, claim: VersionClaim) -> None:
    registry.store.put_json(claim.key, claim.__dict__)


def test_a_live_writers_claim_refuses_until_it_expires(local_registry, tmp_path, live_process, monkeypatch):
    model = local_registry.upload_artifacts(local_registry.create_model("claimed"), write_tree(tmp_path / "v1", V1))
    _put(local_registry, _claim(model.id, 2, pid=live_process, run_id="other-run"))
    new = write_tree(tmp_path / "v2", {"w": b"2"})
    with pytest.raises(VersionConflictError, match=r"version 2 is being written by run other-run .*this write from version 1 is refused"):
        local_registry.upload_artifacts(model, new)
    assert local_registry.get_model(model.id).version == 1
    monkeypatch.setattr(version_claims, "CLAIM_EXPIRY_S", 0.0)
    assert local_registry.upload_artifacts(model, new).version == 2


def test_claims_whose_writers_are_gone_are_taken_over(local_registry, tmp_path):
    model = local_registry.upload_artifacts(local_registry.create_model("abandoned"), write_tree(tmp_path / "v1", V1))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _put(local_registry, _claim(model.id, 2, pid=gone.pid))  # a process of this host that has ended
    _put(local_registry, _claim(model.id, 2, pid=os.getpid()))  # this process, no longer held
    _put(local_registry, _claim(model.id, 2, pid=1, host="elsewhere", age=version_claims.CLAIM_EXPIRY_S + 1))  # expired
    _put(local_registry, _claim(model.id, 2, pid=2, host="elsewhere", age=-2 * version_claims.CLAIM_EXPIRY_S))  # dated a day ahead: forged
    local_registry.store.put_json(layout.version_claim(model.id, 2, "junk"), ["not", "a", "claim"])
    assert local_registry.upload_artifacts(model, write_tree(tmp_path / "v2", {"w": b"2"})).version == 2

    # an earlier attempt of the same run (a retried commit) is no rival either
    staged = local_registry.get_model(model.id)
    local_registry.stage_artifacts(staged, write_tree(tmp_path / "cand", {"w": b"3"}), "run-9")
    _put(local_registry, _claim(model.id, 3, pid=1, host="elsewhere", run_id="run-9"))
    assert local_registry.commit_staged(staged, "run-9").version == 3


def test_a_complete_version_no_record_names_is_skipped_not_overwritten(local_registry, tmp_path):
    model = local_registry.upload_artifacts(local_registry.create_model("orphan"), write_tree(tmp_path / "v1", V1))
    orphan = local_registry.versions.manifest(model, 1)
    local_registry.store.put_json(layout.manifest(model.id, 2), {**orphan.to_dict(), "version": 2})
    saved = local_registry.upload_artifacts(model, write_tree(tmp_path / "v3", {"w": b"3"}))
    assert saved.version == 3


_RACER = """
import os, sys, time
from adapter_base import Registry, VersionConflictError
uri, model_id, tree, go = sys.argv[1:5]
with Registry.open(uri) as registry:
    model = registry.get_model(model_id)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        print("saved", registry.upload_artifacts(model, tree).version)
    except VersionConflictError as exc:
        print("refused", exc)
"""


@pytest.mark.slow
def test_processes_racing_from_one_base_make_exactly_one_version(store_uri, tmp_path):
    """The same race between processes (claims of live processes of this host are live)."""
    with Registry.open(store_uri) as registry:
        model = registry.upload_artifacts(registry.create_model("raced"), write_tree(tmp_path / "v1", V1))
    trees = [write_tree(tmp_path / f"p{i}", {"weights.bin": f"process {i}".encode() * 1000}) for i in range(4)]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, store_uri, model.id, str(tree), str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tree in trees
    ]
    for p in procs:  # every one has read the model at version 1
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    lines = [out.strip() for out, _ in outs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert sorted(line.split()[0] for line in lines) == ["refused", "refused", "refused", "saved"], lines
    winner = next(i for i, line in enumerate(lines) if line.startswith("saved"))
    assert lines[winner] == "saved 2"
    with Registry.open(store_uri) as registry:
        current = registry.get_model(model.id)
        assert current.version == 2
        registry.download_artifacts(current, tmp_path / "dl")
        assert read_tree(tmp_path / "dl") == read_tree(trees[winner])
        assert not registry.store.exists(layout.manifest(model.id, 3))
        assert claim_keys(registry, model.id) == []
