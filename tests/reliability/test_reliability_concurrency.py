"""Two prediction shards of the same model write to the same dataset at the same time.

Each shard is its own ``model-adapter predict`` process against the session's S3 server.
Every item ends with exactly one prediction set of the model, complete valid JSON, from
one of the two runs; nothing is lost, nothing is duplicated.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from adapter_base import ConflictError, Registry
from adapter_base.registry import layout
from reliability_support import CLI, SlowAdapter, dataset_with_model, one_set_each, report_json, run_cli, subprocess_env
from support.images import png_bytes

pytestmark = [pytest.mark.reliability, pytest.mark.s3, pytest.mark.slow]


def _run_together(*arg_lists: list[str], timeout: float = 120) -> list[dict]:
    procs = [subprocess.Popen([CLI, *args], env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in arg_lists]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, out + err
        reports.append(report_json(out))
    return reports


def test_shards_on_disjoint_halves_do_not_clobber_each_other(s3_registry: Registry) -> None:
    ds, items, model = dataset_with_model(s3_registry, 20, prefixes=("a", "b"), configuration={"batch_size": 2, "delay_s": 0.03})
    base = ["predict", model.name, "--dataset", ds.name, "--store", s3_registry.store.uri, "--report"]
    ra, rb = _run_together(base + ["--path-prefix", "a"], base + ["--path-prefix", "b"])
    assert (ra["succeeded"], ra["failed"], rb["succeeded"], rb["failed"]) == (20, 0, 20, 0), (ra, rb)
    sets = one_set_each(s3_registry, items, model)
    for item in items:
        expected = ra["run_id"] if item.path.startswith("a/") else rb["run_id"]
        assert sets[item.id].run_id == expected, f"{item.path} was written by the other shard"
    for r in (ra, rb):
        assert s3_registry.store.get_json(layout.run_prefix(r["run_id"]) + "prediction-report.json")["succeeded"] == 20


def test_shards_on_the_same_items_leave_exactly_one_valid_set_each(s3_registry: Registry) -> None:
    ds, items, model = dataset_with_model(s3_registry, 15, prefixes=("a", "b"), configuration={"batch_size": 3, "delay_s": 0.02})
    base = ["predict", model.name, "--dataset", ds.name, "--store", s3_registry.store.uri, "--report"]
    r1, r2, r3 = _run_together(base, base, base + ["--path-prefix", "a"])
    assert (r1["succeeded"], r2["succeeded"], r3["succeeded"]) == (30, 30, 15), (r1, r2, r3)
    assert r1["failed"] == r2["failed"] == r3["failed"] == 0, (r1, r2, r3)
    sets = one_set_each(s3_registry, items, model)  # every object parses whole: no torn writes
    assert {p.run_id for p in sets.values()} <= {r1["run_id"], r2["run_id"], r3["run_id"]}
    resumed = run_cli(base + ["--resume"])
    assert resumed.returncode == 0 and report_json(resumed.stdout)["skipped"] == 30, resumed.stdout + resumed.stderr


def test_shards_sharing_a_home_do_not_wipe_each_others_model_files(s3_registry: Registry) -> None:
    """Three processes on one machine (one MODEL_ADAPTER_HOME) load a model of many files at
    once: none deletes the files another is downloading or still using."""
    config = {"batch_size": 4, "artifact_files": 8, "artifact_bytes": 1 << 20, "load_delay_s": 1.0, "lazy_weights": True}
    ds, items, model = dataset_with_model(s3_registry, 8, prefixes=("a", "b", "c"), configuration=config)
    base = ["predict", model.name, "--dataset", ds.name, "--store", s3_registry.store.uri, "--report"]
    reports = _run_together(*(base + ["--path-prefix", p] for p in ("a", "b", "c")))
    assert [r["succeeded"] for r in reports] == [8, 8, 8]
    one_set_each(s3_registry, items, model)
    home = Path(os.environ["MODEL_ADAPTER_HOME"]) / "models" / model.name
    assert sorted(p.name for p in home.iterdir() if p.is_dir()) == ["artifacts"], "private copies were not removed"


def test_adapters_in_threads_load_and_predict_the_same_model_at_once(s3_registry: Registry) -> None:
    config = {"batch_size": 4, "artifact_files": 8, "artifact_bytes": 1 << 20, "load_delay_s": 0.5, "lazy_weights": True}
    ds, items, model = dataset_with_model(s3_registry, 10, prefixes=("a", "b"), configuration=config)
    results: list[object] = []

    def shard(prefix: str) -> None:
        try:
            adapter = SlowAdapter(registry=s3_registry)
            adapter.load_from_model(model.id)
            results.append(adapter.predict_dataset(ds, filters={"path_prefix": prefix}))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=shard, args=(p,)) for p in ("a", "b", "a")]
    for t in threads:
        t.start()
        time.sleep(0.3)  # each loads while the one before is still in load() or predicting
    for t in threads:
        t.join(120)
    assert len(results) == 3 and all(getattr(r, "ok", False) for r in results), [getattr(r, "summary", lambda: r)() for r in results]
    one_set_each(s3_registry, items, model)


# --------------------------------------------------------------------------- concurrent imports (issue 20.3)


def _write_class_folder(root: Path, n: int, start: int = 0) -> None:
    """``root/train/<label>/<i>.png``: ``n`` small distinct images over three labels."""
    for i in range(start, start + n):
        path = root / "train" / ("cat", "dog", "owl")[i % 3] / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(i % 256, size=(8 + i // 256, 8)))


def _paths_of_records(registry: Registry, name: str) -> Counter[str]:
    """How many item records each path has, read record by record (no page copies)."""
    ds_id = registry.get_dataset(name).id
    prefix = layout.item_records_prefix(ds_id)
    return Counter(registry.store.get_json(obj.key)["path"] for obj in registry.store.list(prefix))


def _imports_at_once(n: int, source: Path, store_uri: str, *, kill_one_after_s: float | None = None) -> list[str]:
    """Start ``n`` imports of ``source`` at once (SIGKILL the first after ``kill_one_after_s``); the others' output."""
    args = ["dataset", "import", str(source), "--name", "pets", "--store", store_uri]
    procs = [subprocess.Popen([CLI, *args], env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(n)]
    if kill_one_after_s is not None:
        time.sleep(kill_one_after_s)
        procs[0].kill()  # a writer that crashes mid-import leaves a half-written item behind
        procs.pop(0).communicate()
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        outs.append(out)
    return outs


def test_concurrent_imports_of_one_source_end_with_exactly_one_item_per_path(store_uri: str, tmp_path: Path) -> None:
    """Issue 20.3: three imports of one 180-file folder at once ended with 182 records, two at one path,
    and a rerun said "already there". The path claim was check-then-act; now the item id follows from
    the path, so every writer of a path writes the same item. Run on the local store and both S3 servers,
    into a new dataset (the imports also race to create it) and into an existing one, one of the writers
    SIGKILLed mid-import."""
    source = tmp_path / "pets"
    _write_class_folder(source, 30)
    for out in _imports_at_once(3, source, store_uri):
        assert "imported dataset pets" in out, out
    _write_class_folder(source, 120, start=30)
    outs = _imports_at_once(4, source, store_uri, kill_one_after_s=3.0)
    with Registry.open(store_uri) as registry:
        assert [d.name for d in registry.list_datasets()] == ["pets"]
        paths = _paths_of_records(registry, "pets")
        assert len(paths) == 150 and set(paths.values()) == {1}, [p for p, n in paths.items() if n > 1]
        assert registry.count_items(registry.get_dataset("pets")) == 150
        assert registry.get_dataset("pets").metadata["import"]["complete"] is True
    assert all("removed" not in out for out in outs)
    rerun = run_cli(["dataset", "import", str(source), "--name", "pets", "--store", store_uri])
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "added 0 item(s), 150 already there" in rerun.stdout and "removed" not in rerun.stdout


def test_concurrent_add_item_of_one_path_leaves_one_item(store_uri: str) -> None:
    """The Python API: eight threads add the same file at one path at once; one item results, and
    every add either returns that item or says the path is taken."""
    with Registry.open(store_uri) as registry:
        ds = registry.create_dataset("d")
        start = threading.Barrier(8)
        results: list[object] = []

        def add() -> None:
            start.wait()
            try:
                results.append(registry.add_item(ds, "img/a.png", png_bytes(5)).id)
            except ConflictError as exc:
                results.append(exc)

        threads = [threading.Thread(target=add) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        items = list(registry.iter_items(ds))
        assert len(items) == 1 and registry.find_item(ds, "img/a.png").id == items[0].id
        assert {r for r in results if isinstance(r, str)} == {items[0].id}
        assert registry.read_item(items[0]) == png_bytes(5)


def test_concurrent_adds_of_a_file_and_a_path_below_it_never_both_stay(store_uri: str) -> None:
    """A path is a file or a folder, never both; the check before writing cannot see an add that has not
    written yet, so two adds at once of ``img`` and ``img/1.png`` both passed it. Each add checks again once
    its record is there: at most one of the two stays, and every add that returned is in the dataset."""
    with Registry.open(store_uri) as registry:
        for round_ in range(6):
            ds = registry.create_dataset(f"d{round_}")
            start = threading.Barrier(2)
            returned: list[str] = []

            def add(path: str, value: int) -> None:
                start.wait()
                try:
                    registry.add_item(ds, path, png_bytes(value))
                    returned.append(path)
                except ConflictError:
                    pass

            threads = [threading.Thread(target=add, args=args) for args in (("img", 1), ("img/1.png", 2))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            paths = sorted(i.path for i in registry.iter_items(ds))
            assert len(paths) <= 1 and paths == sorted(returned), (round_, paths, returned)
