"""A misbehaving adapter and oversized inputs (issue 13, points 2, 11, 13 and minors; issue 20, points 6, 9, 11).

An adapter that edits the list of items it is given, a ``prepare_item_func`` that never
returns, inputs that decode to far more memory than their files take, NumPy confidences,
and a classification model that returns boxes: each item ends written, or failed with an
error that names it; the run ends and its report is stored. Hooks that leave threads
running, raise ``SystemExit``, ``KeyboardInterrupt`` or another ``BaseException``, save no
file or never return from ``load``: the command or step fails naming the hook (or succeeds)
and exits.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest

from adapter_base import (
    AdapterContractError,
    AdapterHookError,
    Annotation,
    AnnotationCollection,
    BaseModelAdapter,
    Item,
    ModelInfo,
    Registry,
    ValidationError,
)
from adapter_base.concurrency import in_thread
from adapter_base.config import FRAMEWORK_DEFAULTS
from adapter_base.registry import layout
from reliability_support import (
    REPO,
    RogueAdapter,
    count_sets,
    dataset_with_model,
    report_json,
    rogue_model,
    run_cli,
    sigkill,
    start_cli,
    subprocess_env,
    wait_for,
)
from support.images import png_bytes

HERE = Path(__file__).resolve().parent
MIB = 1 << 20


class HostileAdapter(BaseModelAdapter):
    """Predicts ``item.metadata["label"]`` (carried through ``prepare_item_func``), misbehaving on request.

    ``mutate``: what ``predict`` does to ``kw["items"]`` before answering in batch order.
    ``item.metadata``: ``hang`` (prepare blocks until ``release`` is set), ``array_bytes``
    (prepare returns an array of that many bytes), ``boxes`` (predict returns a box),
    ``confidence`` (a NumPy float32 in ModelInfo).
    """

    DEFAULT_CONFIGURATION = {"device": "cpu"}

    def __init__(self, *args: Any, mutate: str | None = None, predict_s: float = 0.0, **kwargs: Any) -> None:
        self.mutate = mutate
        self.predict_s = predict_s
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.live_bytes = 0  # bytes of prepared arrays not yet through predict
        self.peak_live_bytes = 0
        super().__init__(*args, **kwargs)

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.model = "hostile"

    def save(self, local_path: str, **kwargs: Any) -> None:
        Path(local_path, "model.txt").write_text("hostile")

    def prepare_item_func(self, item: Item) -> Any:
        if item.metadata.get("hang"):
            self.release.wait(15)
        size = item.metadata.get("array_bytes")
        if size is None:
            return {"label": item.metadata["label"], "boxes": item.metadata.get("boxes", False), "confidence": item.metadata.get("confidence")}
        with self.lock:
            self.live_bytes += size
            self.peak_live_bytes = max(self.peak_live_bytes, self.live_bytes)
        return {"label": item.metadata["label"], "pixels": np.ones(size, dtype=np.uint8)}

    def predict(self, batch: Sequence[Any], **kwargs: Any) -> list[AnnotationCollection]:
        items: list[Item] = kwargs["items"]
        if self.mutate == "sort":
            items.sort(key=lambda it: it.id, reverse=True)
        elif self.mutate == "pop":
            items.pop()
        elif self.mutate == "clear":
            items.clear()
        elif self.mutate == "rename":
            for it in items:
                it.id = "renamed-" + it.id
        time.sleep(self.predict_s)
        out = []
        for x in batch:
            coll = AnnotationCollection()
            if x.get("boxes"):
                coll.add_box(1, 1, 4, 4, x["label"], confidence=0.9)
            elif x.get("confidence") is not None:
                coll.add(Annotation.classification(x["label"], model=ModelInfo(confidence=np.float32(x["confidence"]))))
            else:
                coll.add_classification(x["label"], confidence=0.9)
            out.append(coll)
        with self.lock:
            self.live_bytes -= sum(x["pixels"].nbytes for x in batch if "pixels" in x)
        return out


def make(registry: Registry, metas: list[dict[str, Any]], *, configuration: dict[str, Any] | None = None, **adapter_kw: Any):
    """A dataset with one item per ``metas`` entry (ground truth: its ``label``) and a bound ``HostileAdapter``."""
    ds = registry.create_dataset("hostile", labels=sorted({m["label"] for m in metas}))
    items = []
    for i, meta in enumerate(metas):
        gt = AnnotationCollection()
        gt.add_classification(meta["label"])
        items.append(registry.add_item(ds, f"img/{i:03d}.png", png_bytes(i), metadata=meta, item_id=f"item-{i:03d}", annotations=gt))
    model = registry.create_model("hostile", configuration=configuration or {}, labels=ds.labels)
    adapter = HostileAdapter(registry=registry, **adapter_kw)
    adapter.load_from_model(model)
    return ds, items, model, adapter


def stored_label(registry: Registry, item: Item, model_id: str) -> str | None:
    pset = registry.get_predictions(item, model_id)
    return None if pset is None else pset.annotations[0].label


def stored_report(registry: Registry, run_id: str) -> dict[str, Any]:
    return json.loads(registry.store.get_bytes(layout.run_prefix(run_id) + "prediction-report.json"))


def accounted(report: Any) -> bool:
    return report.total == report.succeeded + report.skipped + report.failed


def run_python(tmp_path: Path, source: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``source`` (dedented) in a fresh Python with this directory and ``tests/`` importable;
    fail the test if it is still running after ``timeout`` seconds."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(source))
    path = os.pathsep.join([str(HERE), str(HERE.parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path, "MODEL_ADAPTER_HOME": str(tmp_path / "home")}
    start = time.monotonic()
    try:
        return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"process still running after {time.monotonic() - start:.0f}s; output: {exc.stdout!r}")


# --------------------------------------------------------------------------- point 2: the items list


@pytest.mark.parametrize("mutate", ["sort", "pop", "clear", "rename"])
def test_an_adapter_editing_its_items_list_cannot_move_or_drop_predictions(local_registry: Registry, mutate: str) -> None:
    metas = [{"label": label} for label in "abcdefgh"]
    ds, items, model, adapter = make(local_registry, metas, mutate=mutate)
    report = adapter.predict_items(items, batch_size=4)
    assert report.ok and (report.total, report.succeeded, report.failed) == (8, 8, 0), report.summary()
    for item in items:
        assert stored_label(local_registry, item, model.id) == item.metadata["label"], f"{mutate}: item {item.id} got another item's prediction"
    assert count_sets(local_registry.store, ds.id, model.id) == 8  # none under another (renamed) item id
    assert [it.id for it in items] == [f"item-{i:03d}" for i in range(8)]  # the caller's records are untouched


def test_a_wrong_number_of_results_fails_each_item_of_the_batch(local_registry: Registry) -> None:
    class Short(HostileAdapter):
        def predict(self, batch: Sequence[Any], **kwargs: Any) -> list[AnnotationCollection]:
            return super().predict(batch, **kwargs)[:-1]

    ds, items, model, _ = make(local_registry, [{"label": "a"}] * 4)
    adapter = Short(registry=local_registry)
    adapter.load_from_model(model)
    report = adapter.predict_items(items, batch_size=4)
    assert not report.ok and (report.succeeded, report.failed) == (0, 4) and accounted(report)
    for failure in report.failures:
        assert failure.stage == "predict"
        assert "predict returned 3 results for a batch of 4: it must return one per item" in failure.error
    assert stored_report(local_registry, report.run_id)["failed"] == 4


# --------------------------------------------------------------------------- point 11: memory of prepared items


def test_an_item_larger_than_the_byte_budget_fails_by_name_and_the_rest_go_on(local_registry: Registry) -> None:
    metas = [{"label": "a", "array_bytes": 100_000}] * 3 + [{"label": "b", "array_bytes": 3 * MIB}] + [{"label": "a", "array_bytes": 100_000}] * 3
    ds, items, model, adapter = make(local_registry, metas, configuration={"prepared_bytes_budget": 1 * MIB})
    report = adapter.predict_items(items, batch_size=2)
    assert (report.succeeded, report.failed) == (6, 1) and accounted(report), report.summary()
    [failure] = report.failures
    big = items[3]
    assert (failure.item_id, failure.stage, failure.path) == (big.id, "prepare", big.path)
    assert f"item {big.id} ({big.path}) holds 3.0 MiB, more than prepared_bytes_budget (1.0 MiB)" in failure.error
    assert stored_label(local_registry, big, model.id) is None
    assert stored_report(local_registry, report.run_id)["failures"][0]["item_id"] == big.id


def test_prepared_items_waiting_for_predict_stay_within_the_byte_budget(local_registry: Registry) -> None:
    """A slow ``predict`` and many prepared arrays: at most the budget plus one item is held."""
    item_bytes = 1 * MIB
    budget = 6 * MIB
    metas = [{"label": "a", "array_bytes": item_bytes}] * 48
    _, items, _, adapter = make(local_registry, metas, configuration={"prepared_bytes_budget": budget}, predict_s=0.03)
    report = adapter.predict_items(items, batch_size=4)
    assert report.ok and report.succeeded == 48, report.summary()
    assert adapter.peak_live_bytes <= budget + item_bytes, f"{adapter.peak_live_bytes / MIB:.0f} MiB of prepared arrays held at once"


@pytest.mark.slow
def test_an_input_let_go_after_predict_is_gone_before_the_next_decode(tmp_path: Path) -> None:
    """A budget with room for one decode and nothing beside it: each image's bytes come back once its batch is
    predicted, and nothing (the producer, the prepare map) keeps that array alive while the next one decodes."""
    from adapter_base.media import read_image_header
    from bench.decode_memory_bench import TARGET, build, peak_growth, png

    images = [png(3000, "rgb8", value=i) for i in range(4)]
    budget = int(read_image_header(images[0]).decode_bytes() * 1.05)
    got = peak_growth(build(tmp_path / "store", images), {"prepared_bytes_budget": budget, "decode_processes": 0}, sleep=1.0, timeout=300)
    print(f"peak RSS grew {got['growth_mib']:.0f} MiB with a {budget / MIB:.0f} MiB budget")
    assert (got["ok"], got["failed"]) == (4, 0), got
    assert got["growth_mib"] * MIB <= TARGET * budget, f"peak RSS grew {got['growth_mib']:.0f} MiB with a {budget / MIB:.0f} MiB budget"


class Loader(BaseModelAdapter):
    """The default ``prepare_item_func``; predicts ``x`` for each input, after ``predict_s`` seconds."""

    predict_s = 0.0

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.model = "loader"

    def predict(self, batch: Sequence[Any], **kwargs: Any) -> list[AnnotationCollection]:
        time.sleep(self.predict_s)
        return [AnnotationCollection(annotations=[Annotation.classification("x", confidence=0.5)]) for _ in batch]


def test_the_default_loader_refuses_an_image_over_the_budget_before_decoding_it(local_registry: Registry) -> None:
    ds = local_registry.create_dataset("big")
    small = [local_registry.add_item(ds, f"s{i}.png", png_bytes(i)) for i in range(3)]
    big = local_registry.add_item(ds, "big.png", png_bytes(7, size=(2000, 1000)))  # a 7 KB file, 5.7 MiB decoded
    model = local_registry.create_model("loader", configuration={"prepared_bytes_budget": 2 * MIB})

    adapter = Loader(registry=local_registry)
    adapter.load_from_model(model)
    report = adapter.predict_items(small + [big], batch_size=2)
    assert (report.succeeded, report.failed) == (3, 1), report.summary()
    [failure] = report.failures
    assert failure.item_id == big.id and failure.stage == "prepare"
    assert f"item {big.id} (big.png)" in failure.error
    # what decoding holds (the file, the decoder's image, the array, a strip), not the array alone
    needs = r"image 2000x1000 \(PNG L\) needs [0-9.]+ MiB to decode \(5\.7 MiB as an RGB array\)"
    assert re.search(needs + r", more than the prepared_bytes_budget of 2\.0 MiB", failure.error), failure.error


@pytest.mark.slow
def test_peak_memory_of_large_decoded_images_follows_the_budget(tmp_path: Path) -> None:
    """Real PNGs that decode to 27 MB each (a few KB on disk): the run's RSS growth stays near the budget.

    The items are written here; the child process only predicts, so its peak before the run
    is its imports, never a large image it built itself (freed memory it would reuse).
    """
    from bench.decode_memory_bench import build, peak_growth, png

    store = build(tmp_path / "store", [png(3000, "rgb8")] * 24)

    def growth(budget: int | None) -> float:
        # decoding in this process's threads: reading whole batches in worker processes keeps the
        # decoding out of the RSS measured here (its bound is the prepare window, not the budget)
        got = peak_growth(store, {"prepared_bytes_budget": budget, "prepare_in_processes": False}, sleep=8.0, timeout=300)
        assert (got["ok"], got["failed"]) == (24, 0), got
        print(f"budget {budget}: peak RSS grew {got['growth_mib']:.0f} MiB")
        return float(got["growth_mib"])

    bounded = growth(100 * MIB)
    unbounded = growth(None)
    # 100 MiB of held arrays plus the ones being decoded; without a budget many more queue up
    assert bounded < 300, f"RSS grew {bounded:.0f} MiB with a 100 MiB budget ({unbounded:.0f} MiB without)"
    print(f"RSS growth: {bounded:.0f} MiB with a 100 MiB budget, {unbounded:.0f} MiB without")
    assert bounded < unbounded / 1.5, f"budget {bounded:.0f} MiB vs none {unbounded:.0f} MiB"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rgb8", "grey16"])
@pytest.mark.parametrize("processes", [0, 2])
def test_peak_memory_of_decoding_stays_within_the_budget(tmp_path: Path, kind: str, processes: int) -> None:
    """Issue 20, point 7: what decoding holds (the decoder's image in its mode, conversions, the array, every copy)
    counts against ``prepared_bytes_budget``: eight 3000 x 3000 PNGs at once (26 MiB each as arrays, a few KB on
    disk) raise peak RSS by at most 1.25 x the budget, on the prepare threads and in decoding worker processes."""
    from bench.decode_memory_bench import TARGET, build, peak_growth, png

    budget = 100 * MIB
    store = build(tmp_path / "store", [png(3000, kind, value=i) for i in range(8)])
    got = peak_growth(store, {"prepared_bytes_budget": budget, "decode_processes": processes, "prefetch_batches": 4}, timeout=300)
    print(f"{kind}, {processes} decoding processes: peak RSS grew {got['growth_mib']:.0f} MiB with a {budget // MIB} MiB budget")
    assert (got["ok"], got["failed"]) == (8, 0), got
    assert got["growth_mib"] * MIB <= TARGET * budget, f"peak RSS grew {got['growth_mib']:.0f} MiB with a {budget // MIB} MiB budget"


def png_claiming(width: int, height: int) -> bytes:
    """A real 1 x 1 PNG whose header says ``width`` x ``height`` (a decompression bomb's first bytes)."""
    import struct
    import zlib

    data = bytearray(png_bytes(1, size=(1, 1)))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    return bytes(data)


@pytest.mark.parametrize("processes", [0, 2])
def test_a_decompression_bomb_is_a_validation_error_naming_the_item(local_registry: Registry, processes: int) -> None:
    """Issue 20, point 13: Pillow's ``DecompressionBombError`` (too many pixels, from the header) fails its item
    as a ``ValidationError`` naming it; the other items go on."""
    from adapter_base import ValidationError
    from adapter_base.media import decode_image

    bomb = png_claiming(20000, 20000)
    with pytest.raises(ValidationError, match=r"^x\.data: cannot decode image: Image size \(400000000 pixels\) exceeds limit"):
        decode_image(bomb, what="x")
    ds = local_registry.create_dataset("bombs")
    items = [local_registry.add_item(ds, f"s{i}.png", png_bytes(i)) for i in range(3)]
    items.insert(1, local_registry.add_item(ds, "bomb.png", bomb))
    model = local_registry.create_model("loader", configuration={"decode_processes": processes})
    adapter = Loader(registry=local_registry)
    adapter.load_from_model(model)
    report = adapter.predict_items(items, batch_size=2)
    assert (report.succeeded, report.failed) == (3, 1), report.summary()
    [failure] = report.failures
    assert (failure.item_id, failure.stage, failure.path) == (items[1].id, "prepare", "bomb.png")
    named = f"ValidationError: item {items[1].id} (bomb.png).data: cannot decode image: Image size (400000000 pixels)"
    assert failure.error.startswith(named), failure.error


@pytest.mark.parametrize("processes", [0, 2])
def test_a_budget_with_room_for_one_decode_at_a_time_still_finishes_every_batch(local_registry: Registry, processes: int) -> None:
    """Each decode waits for room in the budget, in listing order, while batches of 4 are being filled: the
    batch being filled is handed to ``predict`` rather than waiting for room it holds itself."""
    from adapter_base.media import read_image_header

    ds = local_registry.create_dataset("tight")
    images = [png_bytes(i, size=(300, 200), mode="RGB") for i in range(13)]
    items = [local_registry.add_item(ds, f"{i:02d}.png", data) for i, data in enumerate(images)]
    header = read_image_header(images[0])
    budget = header.decode_bytes(data_copies=3) + 2 * header.array_bytes  # three decoded items and a decode never fit
    config = {"prepared_bytes_budget": budget, "decode_processes": processes, "prepare_workers": 4}
    model = local_registry.create_model("loader", configuration=config)
    adapter = Loader(registry=local_registry)
    adapter.predict_s = 0.02
    adapter.load_from_model(model)
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(adapter.predict_items(items, batch_size=4)), daemon=True)
    runner.start()
    runner.join(60)
    assert done, "the run did not finish: a decode waited for room that the batch being filled held"
    assert (done[0].succeeded, done[0].failed) == (13, 0), done[0].summary()


# --------------------------------------------------------------------------- point 13: a hung prepare_item_func


def test_a_hung_prepare_item_func_fails_its_item_and_the_rest_go_on(local_registry: Registry) -> None:
    metas = [{"label": "a", "hang": i == 3} for i in range(40)]
    _, items, model, adapter = make(local_registry, metas, configuration={"prepare_timeout_s": 1})
    try:
        start = time.monotonic()
        report = adapter.predict_items(items, batch_size=4)
        took = time.monotonic() - start
    finally:
        adapter.release.set()
    assert took < 10, f"the run took {took:.0f}s with one prepare_item_func hung"
    assert (report.succeeded, report.failed) == (39, 1) and accounted(report), report.summary()
    [failure] = report.failures
    assert (failure.item_id, failure.stage) == (items[3].id, "prepare")
    assert "TimeoutError: prepare_item_func did not return within prepare_timeout_s=1" in failure.error
    assert all(stored_label(local_registry, it, model.id) == "a" for it in items if it is not items[3])


@pytest.mark.slow
def test_the_process_exits_after_a_prepare_timeout(tmp_path: Path) -> None:
    """A ``prepare_item_func`` that never returns holds neither the run nor the process at exit."""
    source = f"""
        import sys, time
        from adapter_base import Registry
        from test_reliability_hostile_adapter import HostileAdapter, make

        class Stuck(HostileAdapter):
            def prepare_item_func(self, item):
                if item.metadata.get("hang"):
                    time.sleep(3600)
                return super().prepare_item_func(item)

        registry = Registry.open({str(tmp_path / "store")!r})
        _, items, model, _ = make(registry, [{{"label": "a", "hang": i == 1}} for i in range(6)], configuration={{"prepare_timeout_s": 0.5}})
        adapter = Stuck(registry=registry)
        adapter.load_from_model(model)
        report = adapter.predict_items(items, batch_size=2)
        print("DONE", report.succeeded, report.failed, flush=True)
        registry.close()
        sys.exit(0 if report.ok else 1)
        """
    proc = run_python(tmp_path, source, timeout=30)
    assert "DONE 5 1" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == 1


# --------------------------------------------------------------------------- minors


def test_numpy_confidences_are_stored_as_floats_and_range_checked(local_registry: Registry) -> None:
    assert type(ModelInfo(confidence=np.float32(0.25)).confidence) is float
    assert type(ModelInfo(confidence=np.int64(1)).confidence) is float
    metas = [{"label": "a", "confidence": 0.75}, {"label": "b", "confidence": 1.5}, {"label": "c", "confidence": "nan"}]  # np.float32("nan")
    _, items, model, adapter = make(local_registry, metas)
    report = adapter.predict_items(items, batch_size=1)  # an out-of-range confidence fails its own predict call
    assert (report.succeeded, report.failed) == (1, 2), report.summary()
    [ann] = local_registry.get_predictions(items[0], model.id).annotations
    assert ann.confidence == 0.75 and type(ann.confidence) is float
    errors = {f.item_id: f.error for f in report.failures}
    assert "confidence: must be <= 1.0" in errors[items[1].id]
    assert "confidence: must be finite" in errors[items[2].id]


def test_a_classification_model_returning_boxes_is_a_contract_error_not_a_zero_score(local_registry: Registry) -> None:
    metas = [{"label": "a", "boxes": True}, {"label": "b", "boxes": True}, {"label": "a", "boxes": True}]
    ds, _, model, adapter = make(local_registry, metas)
    assert model.output_type == "classification"
    with pytest.raises(AdapterContractError) as info:
        adapter.evaluate_model(model, ds)
    message = str(info.value)
    assert "output_type 'classification'" in message and "only box annotations on 3 of 3 items" in message


# --------------------------------------------------------------------------- issue 20, points 6, 9, 11: leftover threads, BaseException, empty and stuck hooks


def rogue_cli(tmp_path: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``model-adapter ARGS`` with a home of the test's own; fails the test if it does not exit within ``timeout``."""
    try:
        return run_cli(args, env=subprocess_env({"MODEL_ADAPTER_HOME": str(tmp_path / "home"), **(env or {})}), timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"model-adapter {' '.join(args[:2])} did not exit within {timeout:.0f}s; output: {exc.stdout!r} {exc.stderr!r}")


def run_component(
    tmp_path: Path, name: str, parameters: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``components/<name>.py`` as a KFP step runs it (``python -m kfp.dsl.executor_main``); artifacts are files
    under ``tmp_path`` (``inputs``: name to path, ``outputs``: name to schema title). Fails the test if it does not exit."""
    out_dir = tmp_path / f"step-{name}"
    out_dir.mkdir()

    def artifact(key: str, uri: str, schema: str) -> dict[str, Any]:
        return {"artifacts": [{"name": key, "type": {"schemaTitle": schema}, "uri": uri, "metadata": {}}]}

    executor_input = {
        "inputs": {"parameterValues": parameters, "artifacts": {k: artifact(k, path, "system.Model") for k, path in inputs.items()}},
        "outputs": {"artifacts": {k: artifact(k, str(out_dir / k), schema) for k, schema in outputs.items()}, "outputFile": str(out_dir / "out.json")},
    }
    command = [sys.executable, "-m", "kfp.dsl.executor_main", "--component_module_path", str(REPO / "components" / f"{name}.py"),
               "--function_to_execute", name, "--executor_input", json.dumps(executor_input)]  # fmt: skip
    try:
        return subprocess.run(command, env=subprocess_env({"MODEL_ADAPTER_HOME": str(tmp_path / "home"), **(env or {})}), capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"step {name} did not exit within 60s; output: {exc.stdout!r}")


def leftover_warning(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if "thread(s) the adapter started are still running" in line]
    return line


@pytest.mark.reliability
@pytest.mark.parametrize(("rogue", "code"), [("thread", 0), ("thread,exit", 1)])
def test_a_thread_the_adapter_leaves_running_does_not_hold_the_cli(local_registry: Registry, tmp_path: Path, rogue: str, code: int) -> None:
    """The command prints its summary, stores its report, names the thread and exits with its own code."""
    _, _, model = rogue_model(local_registry, 4, "predict", rogue)
    start = time.monotonic()
    proc = rogue_cli(tmp_path, "predict", model.name, "--dataset", "shades", "--store", local_registry.store.uri, "--report")
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert time.monotonic() - start < 30
    assert "'rogue-predict'" in leftover_warning(proc.stderr), proc.stderr
    report = report_json(proc.stdout)
    assert (report["succeeded"], report["failed"]) == ((4, 0) if code == 0 else (0, 4))
    assert stored_report(local_registry, report["run_id"])["total"] == 4


@pytest.mark.reliability
def test_a_thread_the_adapter_leaves_running_does_not_hold_a_pipeline_step(local_registry: Registry, tmp_path: Path) -> None:
    """A step (run as KFP runs it) exits once its outputs are written: 0 after ``load``, 1 after a failing ``train``."""
    _, _, model = rogue_model(local_registry, 2, "load", "thread", train=4, configuration={"load_timeout_s": None})
    store = local_registry.store.uri
    common = {"adapter": "reliability_support:RogueAdapter", "store_uri": store, "configuration": {}, "run_id": "run1"}
    load = run_component(tmp_path, "load", {**common, "model": model.name, "record_failures": False, "alias": ""}, {}, {"base_model": "system.Model"})
    assert load.returncode == 0, load.stdout + load.stderr
    assert "'rogue-load'" in leftover_warning(load.stdout + load.stderr)
    ref = tmp_path / "step-load" / "base_model"
    assert json.loads(ref.read_text())["version"] == 1  # its output was written before it exited

    failing = {"rogue_hook": "train", "rogue": "thread,exit"}
    train = run_component(
        tmp_path, "train", {**common, "configuration": failing, "dataset": ""}, {"base_model": str(ref)},
        {"staged_model": "system.Model", "training_metrics": "system.Metrics"},
    )  # fmt: skip
    assert train.returncode == 1, train.stdout + train.stderr
    assert "'rogue-train'" in leftover_warning(train.stdout + train.stderr)
    after = local_registry.get_model(model.id)
    assert (after.status, after.version) == ("failed", 1)
    assert "run run1: train: AdapterHookError: adapter hook RogueAdapter.train raised SystemExit: 3" in after.status_message


@pytest.mark.reliability
@pytest.mark.parametrize(("rogue", "raised"), [("exit", "SystemExit: 3"), ("base", "RogueBaseException: raised by predict"), ("interrupt", "KeyboardInterrupt: raised by predict")])
def test_a_base_exception_from_predict_fails_its_items_by_name_and_the_report_is_stored(local_registry: Registry, tmp_path: Path, rogue: str, raised: str) -> None:
    """Not a bare exit, a raw traceback, nor a Ctrl-C with a resume hint: the items fail, naming the hook."""
    _, items, model = rogue_model(local_registry, 3, "predict", rogue)
    proc = rogue_cli(tmp_path, "predict", model.name, "--dataset", "shades", "--store", local_registry.store.uri, "--report")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "interrupted" not in proc.stderr and "resume" not in proc.stderr, proc.stderr
    report = report_json(proc.stdout)
    assert report["failed"] == 3 and stored_report(local_registry, report["run_id"])["failed"] == 3
    assert {f["error"] for f in report["failures"]} == {f"AdapterHookError: adapter hook RogueAdapter.predict raised {raised}"}


@pytest.mark.reliability
@pytest.mark.parametrize(("command", "hook", "rogue", "raised"), [("train", "train", "exit", "SystemExit: 3"), ("predict", "load", "base", "RogueBaseException: raised by load")])
def test_a_base_exception_from_load_or_train_is_one_line_and_recorded(
    local_registry: Registry, tmp_path: Path, command: str, hook: str, rogue: str, raised: str
) -> None:
    _, _, model = rogue_model(local_registry, 2, hook, rogue, train=4)
    args = [command, model.name, "--store", local_registry.store.uri, *(["--dataset", "shades"] if command == "predict" else [])]
    proc = rogue_cli(tmp_path, *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = f"AdapterHookError: adapter hook RogueAdapter.{hook} raised {raised}"
    assert proc.stderr.splitlines()[-1] == f"error: {said}", proc.stderr
    assert "Traceback" not in proc.stderr and "interrupted" not in proc.stderr
    after = local_registry.get_model(model.id)
    assert after.version == 1
    if command == "train":
        assert after.status == "failed" and said in after.status_message


def test_a_base_exception_from_any_hook_is_an_error_naming_it_in_the_python_api(local_registry: Registry) -> None:
    _, items, model = rogue_model(local_registry, 4, "prepare_item_func", "interrupt")
    adapter = RogueAdapter(registry=local_registry)
    adapter.load_from_model(model)
    report = adapter.predict_items(items)  # not a KeyboardInterrupt out of the run: no Ctrl-C was pressed
    assert report.failed == 4 and {f.stage for f in report.failures} == {"prepare"}
    assert all("RogueAdapter.prepare_item_func raised KeyboardInterrupt" in f.error for f in report.failures)
    adapter = RogueAdapter(registry=local_registry, configuration={"rogue_hook": "save", "rogue": "exit"})
    adapter.load_from_model(model)
    with pytest.raises(AdapterHookError, match=r"RogueAdapter\.save raised SystemExit: 3"):
        adapter.save_to_model()
    assert local_registry.get_model(model.id).version == 1


@pytest.mark.reliability
def test_only_a_real_ctrl_c_is_the_users_interrupt(local_registry: Registry, tmp_path: Path) -> None:
    """An adapter's own KeyboardInterrupt is its hook's error; a SIGINT while the adapter predicts stops the run with a resume hint."""
    _, _, model = rogue_model(local_registry, 2, "load", "interrupt")
    proc = rogue_cli(tmp_path, "predict", model.name, "--dataset", "shades", "--store", local_registry.store.uri)
    assert proc.returncode == 1 and "resume" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines()[-1] == "error: AdapterHookError: adapter hook RogueAdapter.load raised KeyboardInterrupt: raised by load"

    with Registry.open(str(tmp_path / "slow-store")) as registry:
        _, _, model = dataset_with_model(registry, 4, configuration={"delay_s": 30})
        log_path = tmp_path / "out.log"
        proc = start_cli(
            ["predict", model.name, "--dataset", "shades", "--store", registry.store.uri, "--batch-size", "1"],
            env=subprocess_env({"MODEL_ADAPTER_HOME": str(tmp_path / "home")}), log=log_path,
        )  # fmt: skip
        try:
            wait_for(lambda: "predict slow" in log_path.read_text(), 30, "the prediction run to start")
            time.sleep(0.5)  # in predict's sleep by now
            os.kill(proc.pid, signal.SIGINT)
            assert proc.wait(20) == 130
        finally:
            sigkill(proc)
    assert "interrupted; to resume: model-adapter predict" in log_path.read_text()


def test_a_sigint_delivered_during_a_hook_is_a_keyboard_interrupt_and_one_raised_by_it_is_not() -> None:
    from adapter_base.hook_calls import guarded

    def pressed_ctrl_c() -> None:
        signal.raise_signal(signal.SIGINT)
        time.sleep(5)  # the handler interrupts this

    def raises() -> None:
        raise KeyboardInterrupt("the adapter's own")

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        guarded("A.predict", pressed_ctrl_c)
    with pytest.raises(AdapterHookError, match="adapter hook A.predict raised KeyboardInterrupt: the adapter's own"):
        guarded("A.predict", raises)  # even after a Ctrl-C, the next call judges its own
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(AdapterHookError, match="B.load raised KeyboardInterrupt"):  # off the main thread: never a signal
        in_thread(lambda: guarded("B.load", raises), "hook").result(10)


# 11 (a): a save that writes nothing makes no version


def test_a_save_that_writes_no_file_is_refused_naming_it(local_registry: Registry, tmp_path: Path) -> None:
    _, _, model = rogue_model(local_registry, 2, "save", "nothing", train=4)
    adapter = RogueAdapter(registry=local_registry)
    adapter.load_from_model(model)
    with pytest.raises(AdapterContractError, match=r"RogueAdapter\.save wrote no file into .*: a model version needs at least one file"):
        adapter.save_to_model()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="holds no file: a model version needs at least one"):
        local_registry.upload_artifacts(model, tmp_path / "empty")  # nor through the registry
    with pytest.raises(AdapterContractError, match=r"RogueAdapter\.save wrote no file"):
        adapter.train_model(model)
    after = local_registry.get_model(model.id)
    assert after.version == 1 and after.status == "failed" and "RogueAdapter.save wrote no file" in after.status_message

    from adapter_base.steps.model_ref import ModelRef
    from adapter_base.steps.train import train as train_step

    local_registry.set_status(after, "trained")
    base = ModelRef.of(local_registry.get_model(model.id), local_registry.store.uri)
    with pytest.raises(AdapterContractError, match=r"RogueAdapter\.save wrote no file"):
        train_step("reliability_support:RogueAdapter", base, "run1", store_uri=local_registry.store.uri)
    after = local_registry.get_model(model.id)
    assert after.version == 1 and after.status == "failed" and "run run1: train: AdapterContractError" in after.status_message
    assert not list(local_registry.store.list(layout.staging_prefix(model.id, "run1")))


@pytest.mark.reliability
def test_a_save_that_writes_no_file_fails_the_train_command(local_registry: Registry, tmp_path: Path) -> None:
    _, _, model = rogue_model(local_registry, 2, "save", "nothing", train=4)
    proc = rogue_cli(tmp_path, "train", model.name, "--store", local_registry.store.uri)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith("error: AdapterContractError: RogueAdapter.save wrote no file into "), proc.stderr
    assert local_registry.get_model(model.id).version == 1


# 11 (b): load_timeout_s


@pytest.mark.reliability
def test_a_load_that_never_returns_fails_the_command_after_load_timeout_s(local_registry: Registry, tmp_path: Path) -> None:
    _, _, model = rogue_model(local_registry, 2, "load", "hang", configuration={"load_timeout_s": 1})
    start = time.monotonic()
    proc = rogue_cli(tmp_path, "predict", model.name, "--dataset", "shades", "--store", local_registry.store.uri, timeout=30)
    assert time.monotonic() - start < 20
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith("error: TimeoutError: RogueAdapter.load did not return within load_timeout_s=1"), proc.stderr


def test_load_timeout_s_has_a_default_and_a_bad_value_is_refused_by_name(local_registry: Registry) -> None:
    assert FRAMEWORK_DEFAULTS["load_timeout_s"] == 3600
    _, _, model = rogue_model(local_registry, 1, "", "")
    adapter = RogueAdapter(registry=local_registry, configuration={"load_timeout_s": "soon"})
    with pytest.raises(ValidationError, match=r"configuration\.load_timeout_s: must be a positive number or null, got 'soon'"):
        adapter.load_from_model(model)
