"""Of creates of one dataset or model name at once, exactly one succeeds, on every backend.

Before, the name check was check-then-act: six threads creating model ``net`` at once all
"succeeded" in almost every round, each with its own id, and all but the last were left
unnamed. A create now holds the name (``registry.locks``) without conditional writes; a
claim whose writer is gone is no obstacle, a live one is. A model record is held the same
way while it is rewritten: a status or alias update no longer writes back a version
pointer a commit moved meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from adapter_base import ConflictError, NotFoundError, Registry
from adapter_base.registry import claims, layout, locks
from adapter_base.registry.locks import LockClaim
from test_core_registry import write_tree
from test_core_version_claims import race


def claim_keys(registry: Registry, kind: str, name: str) -> list[str]:
    return [o.key for o in registry.store.list(layout.lock_claims_prefix(f"{kind}-name", name))]


@pytest.mark.parametrize("kind", ["model", "dataset"])
def test_creates_racing_for_one_name_make_exactly_one(registry, kind):
    create = registry.create_model if kind == "model" else registry.create_dataset
    for round_ in range(3):
        name = f"net{round_}"
        results = race(6, lambda i: create(name))
        made = [r for r in results if not isinstance(r, BaseException)]
        assert len(made) == 1, results
        assert all(isinstance(r, ConflictError) and name in str(r) for r in results if r is not made[0]), results
        listed = registry.list_models() if kind == "model" else registry.list_datasets()
        assert [(e.name, e.id) for e in listed if e.name == name] == [(name, made[0].id)]
        assert claim_keys(registry, kind, name) == []


_RACER = """
import os, sys, time
from adapter_base import ConflictError, NotFoundError, Registry
store_uri, go = sys.argv[1:]
with Registry.open(store_uri) as registry:
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        print("created", registry.create_model("shared").id)
    except ConflictError as exc:
        print("refused", exc)
"""


@pytest.mark.slow
def test_processes_racing_for_one_name_make_exactly_one(store_uri, tmp_path):
    """The same race between processes (claims of live processes of this host are live)."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, store_uri, str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    lines = [out.strip() for out, _ in outs]
    assert sorted(line.split()[0] for line in lines) == ["created", "refused", "refused", "refused"], lines
    winner = next(line.split()[1] for line in lines if line.startswith("created"))
    with Registry.open(store_uri) as registry:
        assert [(m.name, m.id) for m in registry.list_models()] == [("shared", winner)]
        assert claim_keys(registry, "model", "shared") == []


def _claim(kind: str, subject: str, *, pid: int, age: float = 0.0, host: str | None = None, writer: str | None = None) -> LockClaim:
    return LockClaim(kind=kind, subject=subject, writer=writer or f"w{pid}", host=host or claims.HOST, pid=pid, claimed_at=time.time() - age)


def test_a_live_creates_claim_refuses_and_claims_whose_writers_are_gone_do_not(local_registry, live_process, monkeypatch):
    monkeypatch.setattr(locks, "LOCK_WAIT_S", 0.5)
    live = _claim("model-name", "held", pid=live_process)
    local_registry.store.put_json(live.key, live.__dict__)
    with pytest.raises(ConflictError, match=rf"the model name 'held' is held by another process \(process {live_process} on "):
        local_registry.create_model("held")
    assert local_registry.list_models() == []

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for claim in (
        _claim("dataset-name", "pets", pid=gone.pid),  # a process of this host that has ended
        _claim("dataset-name", "pets", pid=os.getpid(), writer="unheld"),  # this process, no longer held
        _claim("dataset-name", "pets", pid=1, host="elsewhere", age=locks.LOCK_EXPIRY_S + 1),  # expired
        _claim("dataset-name", "pets", pid=2, host="elsewhere", age=-3 * locks.LOCK_EXPIRY_S),  # dated ahead: forged, or a clock far off
    ):
        local_registry.store.put_json(claim.key, claim.__dict__)
    local_registry.store.put_json(layout.lock_claim("dataset-name", "pets", "junk"), ["not", "a", "claim"])
    copied = _claim("dataset-name", "other", pid=live_process)  # a live claim copied under another name's key
    local_registry.store.put_json(layout.lock_claim("dataset-name", "pets", copied.writer), copied.__dict__)
    assert [d.name for d in [local_registry.create_dataset("pets")]] == [d.name for d in local_registry.list_datasets()] == ["pets"]


def test_status_and_alias_updates_never_write_back_a_version_a_commit_moved_meanwhile(registry, tmp_path):
    """Before, ``set_status`` and ``set_alias`` read the record and wrote it back whole: a commit landing in
    between was undone (versions 33 and 34 made, the record left at 32, and 7 of 40 commits refused as
    started from a version that was no longer current). Each read-modify-write now holds the record."""
    tree = write_tree(tmp_path / "w", {"w.bin": b"x"})
    model = registry.upload_artifacts(registry.create_model("m"), tree)
    stop = threading.Event()
    failures: list[BaseException] = []

    def churn(update) -> None:
        while not stop.is_set():
            try:
                update()
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                failures.append(exc)
            time.sleep(0.002)

    threads = [
        threading.Thread(target=churn, args=(lambda: registry.set_status(model, "trained"),)),
        threading.Thread(target=churn, args=(lambda: registry.set_alias(model, "production"),)),
    ]
    for t in threads:
        t.start()
    try:
        made = [registry.upload_artifacts(registry.get_model(model.id), tree).version for _ in range(8)]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    latest = registry.get_model(model.id)
    assert made == list(range(2, 10)) and latest.version == 9 and failures == []
    assert 1 <= latest.aliases["production"] <= 9 and latest.status == "trained"
    assert list(registry.store.list(layout.lock_claims_prefix("model", model.id))) == []


def test_a_live_hold_on_a_model_record_refuses_an_update_and_an_expired_one_does_not(local_registry, live_process, monkeypatch):
    monkeypatch.setattr(locks, "LOCK_WAIT_S", 0.5)
    model = local_registry.create_model("held")
    live = _claim("model", model.id, pid=live_process)
    local_registry.store.put_json(live.key, live.__dict__)
    with pytest.raises(ConflictError, match=rf"the record of model 'held' is held by another process \(process {live_process} on "):
        local_registry.set_status(model, "trained")
    local_registry.store.delete(live.key)
    stale = _claim("model", model.id, pid=1, host="elsewhere", age=locks.LOCK_EXPIRY_S + 1)  # its holder is gone
    local_registry.store.put_json(stale.key, stale.__dict__)
    assert local_registry.set_status(model, "trained").status == "trained" == local_registry.get_model(model.id).status


def test_label_additions_racing_on_one_dataset_all_stay_and_a_deleted_dataset_stays_deleted(registry):
    """An import wrote its copy of the dataset record back whole (labels, then the import state): an import
    finding a new label lost it to another finishing meanwhile, and one whose dataset was deleted under it
    wrote the record back. Each read-modify-write now holds the record and starts from the latest one."""
    ds = registry.create_dataset("pets", labels=["cat"])
    results = race(6, lambda i: registry.modify_dataset(ds, lambda latest: {"labels": sorted({*latest.labels, f"l{i}"})}))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert registry.get_dataset("pets").labels == sorted(["cat", *(f"l{i}" for i in range(6))])
    stale = registry.get_dataset("pets")
    registry.delete_dataset(stale)
    with pytest.raises(NotFoundError):
        registry.update_dataset(stale)
    assert not registry.store.exists(layout.dataset_record(stale.id)) and registry.list_datasets() == []
