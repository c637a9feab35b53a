"""Adapters and helpers of the reliability suite (fault injection with real processes).

Importable as ``reliability_support`` both by the tests (pytest puts ``tests/reliability``
on ``sys.path``) and by the ``model-adapter`` subprocesses they start (``PYTHONPATH``), so
the CLI loads ``reliability_support:SlowAdapter`` by import path like a user's adapter.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from adapter_base import AnnotationCollection, BaseModelAdapter, Dataset, Item, Model, PredictionSet, Registry
from adapter_base.registry import layout
from support.images import BRIGHT, DARK, add_shade_items, png_bytes

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "model-adapter")

#: Set in a training subprocess to make ``SlowAdapter.train`` raise when it reaches that epoch.
ENV_FAIL_AT_EPOCH = "RELIABILITY_FAIL_AT_EPOCH"
#: Set to make ``SlowAdapter.save`` raise after writing part of its files.
ENV_FAIL_IN_SAVE = "RELIABILITY_FAIL_IN_SAVE"
#: Set in a training subprocess to make each ``SlowAdapter`` epoch take that many seconds (overrides ``epoch_delay_s``).
ENV_EPOCH_DELAY = "RELIABILITY_EPOCH_DELAY_S"


# --------------------------------------------------------------------------- data


def dataset_with_model(
    registry: Registry,
    n: int,
    *,
    configuration: Mapping[str, Any] | None = None,
    adapter: str = "reliability_support:SlowAdapter",
    prefixes: Sequence[str] = ("img",),
    train: int = 0,
) -> tuple[Dataset, list[Item], Model]:
    """A dataset of ``n`` images per prefix (plus ``train`` training images) and a model saved as version 1."""
    ds = registry.create_dataset("shades", labels=[BRIGHT, DARK])
    items: list[Item] = []
    for k, prefix in enumerate(prefixes):
        items += add_shade_items(registry, ds, n, prefix=prefix, subset="test", start=k * n)
    if train:
        add_shade_items(registry, ds, train, prefix="train", subset="train", start=10_000)
    model = registry.create_model(
        "slow", adapter=adapter, configuration=dict(configuration or {}), labels=[BRIGHT, DARK], dataset_id=ds.id, subsets={"train": {"subset": "train"}}
    )
    model = SlowAdapter(registry=registry).save_from_scratch(model)
    return ds, items, model


# --------------------------------------------------------------------------- adapters


class SlowAdapter(BaseModelAdapter):
    """Brightness classifier that takes its time, so faults land in the middle of a run.

    Configuration: ``delay_s`` (sleep per predicted batch), ``epochs`` / ``epoch_delay_s``
    (training), ``artifact_files`` / ``artifact_bytes`` (extra random files ``save`` writes,
    to make uploads and downloads long), ``load_delay_s`` (a slow ``load``), ``lazy_weights``
    (``predict`` reads the weights file again, as memory-mapped weights would). Training writes ``state.json`` and
    ``epoch-<i>.json`` to ``checkpoint_dir`` each epoch, and resumes from
    ``resume_checkpoint``; ``$RELIABILITY_FAIL_AT_EPOCH`` makes it raise at that epoch,
    ``$RELIABILITY_EPOCH_DELAY_S`` sets its epochs' length,
    ``$RELIABILITY_FAIL_IN_SAVE`` makes ``save`` raise half-way.
    """

    DEFAULT_CONFIGURATION = {
        "threshold": 128.0,
        "delay_s": 0.0,
        "epochs": 3,
        "epoch_delay_s": 0.0,
        "artifact_files": 0,
        "artifact_bytes": 0,
        "device": "cpu",  # never probe for a GPU (importing torch takes seconds)
        "load_delay_s": 0.0,
        "lazy_weights": False,
    }

    def save_from_scratch(self, model: Model) -> Model:
        """Load ``model`` (version 0) and save it: version 1."""
        self.load_from_model(model)
        return self.save_to_model()

    def load(self, local_path: str, **kwargs: Any) -> None:
        weights = Path(local_path) / "weights.json"
        self.model = json.loads(weights.read_text()) if weights.exists() else {"threshold": float(self.configuration["threshold"])}
        self.weights_path = weights if self.configuration["lazy_weights"] else None
        time.sleep(float(self.configuration["load_delay_s"]))

    def save(self, local_path: str, **kwargs: Any) -> None:
        Path(local_path, "weights.json").write_text(json.dumps(self.model))
        if os.environ.get(ENV_FAIL_IN_SAVE):
            raise OSError(f"injected failure while saving to {local_path}")
        n, size = int(self.configuration["artifact_files"]), int(self.configuration["artifact_bytes"])
        for i in range(n):
            with open(Path(local_path, f"blob-{i:03d}.bin"), "wb") as fh:
                left = size
                while left > 0:
                    chunk = os.urandom(min(left, 1 << 20))
                    fh.write(chunk)
                    left -= len(chunk)

    def train(self, data_path: str, output_path: str, **kwargs: Any) -> None:
        callback = kwargs["on_epoch_end_callback"]
        checkpoint_dir = Path(kwargs["checkpoint_dir"])
        resume = kwargs.get("resume_checkpoint")
        start = 0
        if resume:
            start = json.loads(Path(resume, "state.json").read_text())["epoch"] + 1
        epochs = int(self.configuration["epochs"])
        fail_at = os.environ.get(ENV_FAIL_AT_EPOCH)
        for epoch in range(start, epochs):
            if fail_at is not None and int(fail_at) == epoch:
                raise RuntimeError(f"injected training failure at epoch {epoch}")
            time.sleep(float(os.environ.get(ENV_EPOCH_DELAY) or self.configuration["epoch_delay_s"]))
            (checkpoint_dir / f"epoch-{epoch}.json").write_text(json.dumps({"epoch": epoch}))
            (checkpoint_dir / "state.json").write_text(json.dumps({"epoch": epoch, "resumed_from": start}))
            self.model = {"threshold": 120.0, "epochs_done": epoch + 1}
            callback(epoch, epochs, {"epoch": epoch, "resumed_from": start})

    def predict(self, batch: Sequence[Any], **kwargs: Any) -> list[AnnotationCollection]:
        time.sleep(float(self.configuration["delay_s"]))
        if self.weights_path is not None:  # like memory-mapped weights, read while predicting
            self.model = json.loads(self.weights_path.read_text())
        out = []
        for image in batch:
            coll = AnnotationCollection()
            coll.add_classification(BRIGHT if float(np.asarray(image).mean()) >= self.model["threshold"] else DARK, confidence=0.9)
            out.append(coll)
        return out


class ScriptedAdapter(BaseModelAdapter):
    """Does what each item's metadata says, to break ``predict``'s contract on purpose.

    ``item.metadata["batch"]`` (any item of the batch): ``raise``, ``hang``, ``short``
    (one result too few), ``long`` (one too many), ``dict`` (not a list), ``none``,
    ``strings`` (a str per item), ``leak`` (raises with the S3 secret in the message),
    ``log_leak`` (logs the S3 credentials, then predicts).
    ``item.metadata["result"]``: ``nan_confidence``, ``inf_confidence``, ``big_confidence``,
    ``negative_confidence``, ``nan_box``, ``inf_point``, ``negative_box``, ``inverted_box``,
    ``not_annotation`` (a str in the list); otherwise one valid classification.
    """

    DEFAULT_CONFIGURATION = {"device": "cpu"}

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.model = "scripted"

    def save(self, local_path: str, **kwargs: Any) -> None:
        Path(local_path, "model.txt").write_text("scripted")

    def train(self, data_path: str, output_path: str, **kwargs: Any) -> None:
        raise RuntimeError(f"training blew up, credentials were {os.environ.get('AWS_SECRET_ACCESS_KEY')}")

    def predict(self, batch: Sequence[Any], **kwargs: Any) -> Any:
        items: list[Item] = kwargs["items"]
        modes = {it.metadata.get("batch") for it in items}
        if "raise" in modes:
            raise RuntimeError("model exploded on purpose")
        if "log_leak" in modes:
            self.logger.warning("talking to the backend as %s:%s", os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"))
        if "leak" in modes:
            raise RuntimeError(
                f"backend refused key {os.environ.get('AWS_ACCESS_KEY_ID')} / {os.environ.get('AWS_SECRET_ACCESS_KEY')}"
            )
        if "hang" in modes:
            time.sleep(3600)
        if "dict" in modes:
            return {"not": "a list"}
        if "none" in modes:
            return None
        if "strings" in modes:
            return ["cat" for _ in items]
        out: list[Any] = []
        for it in items:
            coll = AnnotationCollection()
            mode = it.metadata.get("result")
            if mode in ("nan_box", "negative_box", "inverted_box"):
                coll.add_box(1, 1, 5, 5, "thing", confidence=0.5)
                c = coll.annotations[-1].coordinates
                if mode == "nan_box":
                    c["left"] = float("nan")
                elif mode == "negative_box":
                    c["top"] = -3.0
                else:
                    c["right"] = 0.0
            elif mode == "inf_point":
                coll.add_point(1, 1, "thing", confidence=0.5)
                coll.annotations[-1].coordinates["y"] = float("inf")
            else:
                coll.add_classification("thing", confidence=0.5)
                # set past the builder's check, as a careless adapter might
                conf = {"nan_confidence": float("nan"), "inf_confidence": float("inf"), "big_confidence": 1.5, "negative_confidence": -0.1}.get(mode)
                if conf is not None:
                    coll.annotations[-1].model.confidence = conf
            if mode == "not_annotation":
                out.append(["a string, not an Annotation"])
                continue
            out.append(coll)
        if "short" in modes:
            out = out[:-1]
        if "long" in modes:
            out = out + [AnnotationCollection()]
        return out


def scripted(
    registry: Registry, modes: list[dict], *, batch_size: int = 2, configuration: Mapping[str, Any] | None = None, train: bool = False
) -> tuple[Dataset, list[Item], Model, "ScriptedAdapter"]:
    """A dataset whose items sort (by id) in the order of ``modes`` (their metadata), each
    with a ``thing`` ground truth, and a ``ScriptedAdapter`` model saved as version 1
    (with ``train``: bound to the dataset, one subset of every item)."""
    ds = registry.create_dataset("scripted", labels=["thing"])
    items = []
    for i, meta in enumerate(modes):
        gt = AnnotationCollection()
        gt.add_classification("thing")
        item_id = f"i{i:02d}-{'-'.join(map(str, meta.values())) or 'ok'}"
        items.append(registry.add_item(ds, f"x/{i:02d}.png", png_bytes(100), metadata=meta, item_id=item_id, subsets=["train"], annotations=gt))
    model = registry.create_model(
        "scripted",
        adapter="reliability_support:ScriptedAdapter",
        configuration={"batch_size": batch_size, **(configuration or {})},
        labels=["thing"],
        dataset_id=ds.id if train else None,
        subsets={"train": {"subset": "train"}} if train else {},
    )
    adapter = ScriptedAdapter(registry=registry)
    adapter.load_from_model(model)
    model = adapter.save_to_model()
    return ds, items, model, adapter


class RogueBaseException(BaseException):
    """A ``BaseException`` of the adapter's own, not an ``Exception``."""


class RogueAdapter(SlowAdapter):
    """``SlowAdapter`` whose hook ``configuration["rogue_hook"]`` (``load``, ``save``, ``train``, ``predict``,
    ``prepare_item_func``) does ``configuration["rogue"]`` when called:

    ``thread`` (starts a non-daemon thread ``rogue-<hook>`` that sleeps an hour, then goes on as usual),
    ``exit`` (``sys.exit(3)``), ``interrupt`` (raises ``KeyboardInterrupt``), ``base`` (raises
    ``RogueBaseException``), ``hang`` (sleeps an hour), ``nothing`` (``save`` only: writes no file);
    several, comma-separated, in that order (``thread,exit``).
    """

    DEFAULT_CONFIGURATION = {**SlowAdapter.DEFAULT_CONFIGURATION, "rogue_hook": "", "rogue": ""}

    def _misbehave(self, hook: str) -> None:
        if self.configuration.get("rogue_hook") != hook:
            return
        for what in self.configuration["rogue"].split(","):
            if what == "thread":
                threading.Thread(target=time.sleep, args=(3600,), name=f"rogue-{hook}").start()
            elif what == "exit":
                sys.exit(3)
            elif what == "interrupt":
                raise KeyboardInterrupt(f"raised by {hook}")
            elif what == "base":
                raise RogueBaseException(f"raised by {hook}")
            elif what == "hang":
                time.sleep(3600)

    def load(self, local_path: str, **kwargs: Any) -> None:
        super().load(local_path, **kwargs)
        self._misbehave("load")

    def save(self, local_path: str, **kwargs: Any) -> None:
        self._misbehave("save")
        if not (self.configuration.get("rogue_hook") == "save" and self.configuration["rogue"] == "nothing"):
            super().save(local_path, **kwargs)

    def train(self, data_path: str, output_path: str, **kwargs: Any) -> None:
        self._misbehave("train")
        super().train(data_path, output_path, **kwargs)

    def predict(self, batch: Sequence[Any], **kwargs: Any) -> list[AnnotationCollection]:
        self._misbehave("predict")
        return super().predict(batch, **kwargs)

    def prepare_item_func(self, item: Item) -> Any:
        self._misbehave("prepare_item_func")
        return super().prepare_item_func(item)


def rogue_model(
    registry: Registry, n: int, hook: str, rogue: str, *, train: int = 0, configuration: Mapping[str, Any] | None = None
) -> tuple[Dataset, list[Item], Model]:
    """``dataset_with_model`` for a ``RogueAdapter`` model whose ``hook`` does ``rogue`` (saved sanely as version 1)."""
    cfg = {"rogue_hook": hook, "rogue": rogue, **(configuration or {})}
    return dataset_with_model(registry, n, adapter="reliability_support:RogueAdapter", configuration=cfg, train=train)


# --------------------------------------------------------------------------- checks


def one_set_each(registry: Registry, items: Iterable[Item], model: Model) -> dict[str, PredictionSet]:
    """Assert every item has exactly one prediction set, from ``model``, stored as valid JSON."""
    out: dict[str, PredictionSet] = {}
    for item in items:
        ids = registry.prediction_model_ids(item)
        assert ids == [model.id], f"item {item.id} ({item.path}) has prediction sets from {ids}, expected exactly [{model.id}]"
        raw = registry.store.get_bytes(layout.predictions(item.dataset_id, item.id, model.id, model.version))
        pset = PredictionSet.from_dict(json.loads(raw))  # strict: the whole object parses and validates
        assert pset.item_id == item.id and pset.model_id == model.id and pset.model_version == model.version
        assert len(pset.annotations) == 1 and pset.annotations[0].model.model_id == model.id
        out[item.id] = pset
    return out


def existing_sets(registry: Registry, items: Iterable[Item], model: Model) -> dict[str, PredictionSet]:
    """``{item_id: PredictionSet}`` of the items that have one from ``model``."""
    found = {}
    for item in items:
        pset = registry.get_predictions(item, model.id)
        if pset is not None:
            found[item.id] = pset
    return found


def count_sets(store: Any, dataset_id: str, model_id: str) -> int:
    """How many prediction sets of ``model_id`` exist in the dataset (one listing)."""
    found = (layout.prediction_set_of(o.key) for o in store.list(f"datasets/{dataset_id}/annotations/"))
    return sum(1 for f in found if f is not None and f[0] == model_id)


# --------------------------------------------------------------------------- processes


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment (fixtures set AWS_* and MODEL_ADAPTER_HOME) plus this directory
    and ``tests/`` (the shared ``support`` package) on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``model-adapter ARGS`` to completion."""
    return subprocess.run([CLI, *args], env=dict(env or subprocess_env()), capture_output=True, text=True, timeout=timeout)


def start_cli(args: Sequence[str], *, env: Mapping[str, str] | None = None, log: Path) -> subprocess.Popen[bytes]:
    """Start ``model-adapter ARGS`` in its own process group, output to ``log``."""
    fh = open(log, "wb")
    try:
        return subprocess.Popen([CLI, *args], env=dict(env or subprocess_env()), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        fh.close()


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group (a preempted pod) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def report_json(stdout: str) -> dict[str, Any]:
    """The JSON report ``model-adapter predict --report`` prints after its summary."""
    start = stdout.index("\n{") + 1 if not stdout.startswith("{") else 0
    return json.loads(stdout[start:])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- server faults


class Outage:
    """SIGKILL a ``SeaweedServer`` once, and start it again on the same ports ``down_s`` later.

    ``after_calls(obj, name, n)`` wraps ``obj.name`` so that its ``n``-th call triggers the
    outage just before it runs: the fault lands in the middle of the operation, every time.
    """

    def __init__(self, server: Any, down_s: float = 2.5, restart: bool = True) -> None:
        self.server = server
        self.down_s = down_s
        self.restart = restart
        self.killed_at: float | None = None
        self.restarted_at: float | None = None
        self.restart_error: BaseException | None = None
        self._lock = threading.Lock()
        self._restarted = threading.Event()

    @property
    def fired(self) -> bool:
        return self.killed_at is not None

    def trigger(self) -> None:
        with self._lock:
            if self.killed_at is not None:
                return
            self.server.kill()
            self.killed_at = time.monotonic()
        if self.restart:
            timer = threading.Timer(self.down_s, self._restart)
            timer.daemon = True
            timer.start()

    def _restart(self) -> None:
        try:
            self.server.start()
            self.restarted_at = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - reported by wait_restarted
            self.restart_error = exc
        finally:
            self._restarted.set()

    def wait_restarted(self, timeout: float = 60) -> None:
        assert self._restarted.wait(timeout), "the server was not restarted"
        assert self.restart_error is None, f"restart failed: {self.restart_error!r}"

    def after_calls(self, obj: Any, name: str, n: int) -> "Outage":
        original = getattr(obj, name)
        count = [0]
        lock = threading.Lock()

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                count[0] += 1
                fire = count[0] == n
            if fire:
                self.trigger()
            return original(*args, **kwargs)

        setattr(obj, name, wrapper)
        return self

    def mid_stream(self, store: Any, after_bytes: int) -> "Outage":
        """Trigger once a reader from ``store.open_read`` has returned ``after_bytes`` bytes."""
        original = store.open_read
        outage = self

        @contextlib.contextmanager
        def open_read(key: str) -> Iterator[Any]:
            with original(key) as reader:
                yield _TrippingReader(reader, after_bytes, outage)

        store.open_read = open_read
        return self


class _TrippingReader:
    def __init__(self, reader: Any, after_bytes: int, outage: Outage) -> None:
        self._reader = reader
        self._left = after_bytes
        self._outage = outage

    def read(self, n: int = -1) -> bytes:
        data = self._reader.read(n)
        self._left -= len(data)
        if self._left <= 0 and data:
            self._outage.trigger()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)
