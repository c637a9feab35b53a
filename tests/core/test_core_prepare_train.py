"""``prepare_data`` and ``train_model`` end to end with small real adapters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adapter_base import BaseModelAdapter, ValidationError
from adapter_base.flows.train import stage_training
from adapter_base.registry import layout
from adapter_base.registry.checkpoints import checkpoint_key, stored_checkpoints
from core_support import BRIGHT, DARK, BrightnessAdapter, add_shade_items, brightness_dataset

SUBSETS = {"train": {"subset": "train"}, "validation": {"subset": "validation"}}


@pytest.fixture
def ds(local_registry):
    return brightness_dataset(local_registry)


@pytest.fixture
def model(local_registry, ds):
    return local_registry.create_model("shade", labels=[BRIGHT, DARK], dataset_id=ds.id, subsets=SUBSETS)


def loaded(registry, model, cls=BrightnessAdapter, **kwargs):
    adapter = cls(registry=registry, **kwargs)
    adapter.load_from_model(model)
    return adapter


# --------------------------------------------------------------------------- prepare_data


def test_prepare_data_layout(local_registry, ds, model, home):
    adapter = loaded(local_registry, model)
    data_path, output_path = adapter.prepare_data(ds)
    run_root = data_path.parent.parent
    assert run_root.parent == home / "model_data" / f"{model.id}_{model.name}"
    assert re.fullmatch(r"\d{8}-\d{6}-\d{6}", run_root.name)
    assert data_path == run_root / "datasets" / ds.id
    assert output_path == run_root / "output" and output_path.is_dir()
    assert sorted(p.name for p in data_path.iterdir()) == ["train", "validation"]  # one folder per subset
    for subset, n in (("train", 6), ("validation", 4)):
        items = sorted(p.relative_to(data_path / subset / "items").as_posix() for p in (data_path / subset / "items").rglob("*.png"))
        jsons = sorted(p.relative_to(data_path / subset / "json").as_posix() for p in (data_path / subset / "json").rglob("*.json"))
        assert len(items) == n and all(p.startswith(f"{subset}/") for p in items)
        assert jsons == [p + ".json" for p in items]
    expected = {it.path: it for it in local_registry.iter_items(ds, {"subset": "train"})}
    for record_path in (data_path / "train" / "json").rglob("*.json"):
        record = json.loads(record_path.read_text())
        item = expected[record["item"]["path"]]
        assert record["item"]["id"] == item.id
        assert [a["label"] for a in record["annotations"]] == [item.metadata["label"]]
        assert (data_path / "train" / "items" / item.path).read_bytes() == local_registry.read_item(item)
    assert adapter.calls["convert"] == [(str(data_path), {})]


def test_prepare_data_writes_only_ground_truth(local_registry, ds, model):
    adapter = loaded(local_registry, model)
    report = adapter.predict_dataset(ds)  # every item now also has this model's predictions
    assert report.ok and report.succeeded == 14
    other = local_registry.create_model("other")
    loaded(local_registry, other).predict_dataset(ds, filters={"subset": "train"})
    data_path, _ = adapter.prepare_data(ds)
    records = [json.loads(p.read_text()) for p in data_path.rglob("*.json")]
    assert len(records) == 10
    for record in records:
        assert len(record["annotations"]) == 1
        assert all(a["model"] is None for a in record["annotations"]), record["annotations"]


def test_prepare_data_skips_items_without_ground_truth(local_registry, ds, model):
    add_shade_items(local_registry, ds, 3, prefix="train", subset="train", start=100, annotate=False)
    data_path, _ = loaded(local_registry, model).prepare_data(ds)
    assert len(list((data_path / "train" / "json").rglob("*.json"))) == 6
    assert len(list((data_path / "train" / "items").rglob("*.png"))) == 6


def test_prepare_data_any_subset_names_and_filters(local_registry, ds):
    model = local_registry.create_model(
        "custom", dataset_id=ds.id, subsets={"fit": {"subset": "train"}, "holdout": {"path_prefix": "test/"}}
    )
    root = local_registry.store.root.parent / "prep"
    data_path, output_path = loaded(local_registry, model).prepare_data(ds, root_path=str(root))
    assert data_path == root / "datasets" / ds.id and output_path == root / "output"
    assert sorted(p.name for p in data_path.iterdir()) == ["fit", "holdout"]
    assert len(list((data_path / "holdout" / "items").rglob("*.png"))) == 4


def test_prepare_data_empty_subset_is_an_error_naming_it(local_registry, ds):
    model = local_registry.create_model("empty-sub", dataset_id=ds.id, subsets={"train": {"subset": "train"}, "holdout": {"subset": "holdout"}})
    with pytest.raises(ValidationError) as exc:
        loaded(local_registry, model).prepare_data(ds)
    assert exc.value.field == "subsets.holdout"
    assert "'holdout'" in str(exc.value) and "no annotated items" in str(exc.value)


def test_prepare_data_without_subsets_is_an_error(local_registry, ds):
    model = local_registry.create_model("no-subsets", dataset_id=ds.id)
    with pytest.raises(ValidationError, match=r"Model\.subsets"):
        loaded(local_registry, model).prepare_data(ds)


def test_convert_from_dataset_gets_kwargs(local_registry, ds, model):
    adapter = loaded(local_registry, model)
    data_path, _ = adapter.prepare_data(ds, fmt="yolo")
    assert adapter.calls["convert"] == [(str(data_path), {"fmt": "yolo"})]


def test_convert_from_dtlpy_alias(local_registry, ds, model):
    """An adapter ported from dtlpy overrides ``convert_from_dtlpy``; prepare_data must run it."""
    seen = []

    class Ported(BaseModelAdapter):
        def load(self, local_path, **kwargs):
            self.model = "m"

        def convert_from_dtlpy(self, data_path, **kwargs):
            seen.append(data_path)

    adapter = loaded(local_registry, model, cls=Ported)
    data_path, _ = adapter.prepare_data(ds)
    assert seen == [str(data_path)]


def test_convert_from_dtlpy_calls_convert_from_dataset(local_registry, model):
    adapter = loaded(local_registry, model)
    adapter.convert_from_dtlpy("/some/path", k=1)
    assert adapter.calls["convert"] == [("/some/path", {"k": 1})]


# --------------------------------------------------------------------------- train_model


def test_train_model_status_progress_and_version(local_registry, ds, model):
    statuses = []

    class Watching(BrightnessAdapter):
        def train(self, data_path, output_path, **kwargs):
            statuses.append(self.registry.get_model(model.id).status)
            super().train(data_path, output_path, **kwargs)

    seen = []
    adapter = Watching(registry=local_registry, configuration={"epochs": 4})
    trained = adapter.train_model(model, progress=lambda i, n, metrics: seen.append((i, n, metrics)))
    assert statuses == ["training"]
    assert [(i, n) for i, n, _ in seen] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert seen[-1][2] == {"loss": 0.25}
    assert trained.status == "trained" and trained.status_message is None and trained.version == 1
    stored = local_registry.get_model(model.id)
    assert stored.status == "trained" and stored.version == 1
    assert stored.configuration["epochs"] == 4
    assert stored.metrics["training"] == {"epoch": 3, "loss": 0.25}
    assert 40 < adapter.model["threshold"] < 200
    data_path, output_path, kwargs = adapter.calls["train"][0]
    assert sorted(p.name for p in Path(data_path).iterdir()) == ["train", "validation"]
    assert Path(output_path).name == "output"
    assert kwargs["resume_checkpoint"] is None and Path(kwargs["checkpoint_dir"]).is_dir()
    assert callable(kwargs["on_epoch_end_callback"])

    again = BrightnessAdapter(registry=local_registry).train_model(model.name)
    assert again.version == 2 and again.status == "trained"


def test_train_model_progress_object_with_update(local_registry, ds, model):
    class Progress:
        def __init__(self):
            self.updates = []

        def update(self, **kw):
            self.updates.append(kw)

    progress = Progress()
    BrightnessAdapter(registry=local_registry, configuration={"epochs": 2}).train_model(model, progress=progress)
    assert [u["progress"] for u in progress.updates] == [50, 100]


def test_train_model_needs_a_dataset(local_registry):
    model = local_registry.create_model("orphan", subsets=SUBSETS)
    with pytest.raises(ValidationError, match=r"Model\.dataset_id"):
        BrightnessAdapter(registry=local_registry).train_model(model)


def test_train_model_cleanup_removes_local_data(local_registry, ds, model, home):
    BrightnessAdapter(registry=local_registry).train_model(model, cleanup=True)
    assert list((home / "model_data" / f"{model.id}_{model.name}").iterdir()) == []


class Checkpointing(BrightnessAdapter):
    """Writes ``ckpt.json`` each epoch; fails after ``fail_after`` epochs' callbacks."""

    EPOCHS = 4

    def __init__(self, *args, fail_after=None, **kwargs):
        self.fail_after = fail_after
        self.epochs_run = []
        self.resumed_from = "unset"
        super().__init__(*args, **kwargs)

    def train(self, data_path, output_path, **kwargs):
        resume = kwargs["resume_checkpoint"]
        self.resumed_from = resume
        start = 0
        if resume:
            start = json.loads(Path(resume, "ckpt.json").read_text())["epoch"] + 1
        for epoch in range(start, self.EPOCHS):
            Path(kwargs["checkpoint_dir"], "ckpt.json").write_text(json.dumps({"epoch": epoch}))
            kwargs["on_epoch_end_callback"](epoch, self.EPOCHS, {"loss": 1.0})
            self.epochs_run.append(epoch)
            if epoch == self.fail_after:
                raise RuntimeError(f"GPU fell off the bus at epoch {epoch}")
        self.model = {"threshold": 120.0}


def test_train_failure_sets_failed_keeps_version_and_checkpoints_then_resumes(local_registry, ds, model, tmp_path):
    first = Checkpointing(registry=local_registry, fail_after=None).train_model(model)
    assert first.version == 1

    failing = Checkpointing(registry=local_registry, fail_after=1)
    with pytest.raises(RuntimeError, match="GPU fell off the bus"):
        failing.train_model(model)
    stored = local_registry.get_model(model.id)
    assert stored.status == "failed"
    assert stored.status_message == "RuntimeError: GPU fell off the bus at epoch 1"
    assert stored.version == 1 and stored.artifacts == first.artifacts
    assert not local_registry.store.exists(layout.manifest(model.id, 2))
    kept = stored_checkpoints(local_registry.store, model.id)
    assert kept is not None and [f.path for f in kept.files] == ["ckpt.json"]
    assert json.loads(local_registry.store.get_bytes(checkpoint_key(kept, "ckpt.json"))) == {"epoch": 1}

    rerun = Checkpointing(registry=local_registry)
    trained = rerun.train_model(model)
    assert rerun.resumed_from is not None
    assert json.loads(Path(rerun.resumed_from, "ckpt.json").read_text())["epoch"] >= 1
    assert rerun.epochs_run == [2, 3]
    assert trained.status == "trained" and trained.status_message is None and trained.version == 2
    assert list(local_registry.store.list(layout.checkpoints_prefix(model.id))) == []  # cleared after success


def test_checkpoint_written_just_before_a_crash_is_kept(local_registry, ds, model):
    """A checkpoint the adapter wrote before the exception (but after its last epoch-end
    callback, e.g. a mid-epoch step checkpoint) must survive the failed run too."""

    class CrashAfterSaving(BrightnessAdapter):
        def train(self, data_path, output_path, **kwargs):
            Path(kwargs["checkpoint_dir"], "step-500.ckpt").write_text("weights at step 500")
            raise RuntimeError("killed at step 501")

    with pytest.raises(RuntimeError):
        CrashAfterSaving(registry=local_registry).train_model(model)
    assert local_registry.get_model(model.id).status == "failed"
    kept = stored_checkpoints(local_registry.store, model.id)
    assert kept is not None and [f.path for f in kept.files] == ["step-500.ckpt"]
    assert local_registry.store.get_bytes(checkpoint_key(kept, "step-500.ckpt")) == b"weights at step 500"


def test_a_run_refused_by_its_checks_leaves_the_model_untouched(local_registry, ds):
    model = local_registry.create_model("bad-subset", dataset_id=ds.id, subsets={"train": {"subset": "nothing"}})
    with pytest.raises(ValidationError, match="subsets.train"):
        BrightnessAdapter(registry=local_registry).train_model(model)
    stored = local_registry.get_model(model.id)
    assert stored.status == "created" and stored.status_message is None and stored.version == 0


def test_stage_training_stages_the_result_for_a_later_commit(local_registry, ds, model, tmp_path):
    adapter = BrightnessAdapter(registry=local_registry)
    with pytest.raises(ValidationError, match="run_id"):
        stage_training(adapter, model, "")
    staged = stage_training(adapter, model, "run-7")
    assert staged.version == 0 and local_registry.get_model(model.id).version == 0
    committed = local_registry.commit_staged(staged, "run-7", status="trained")
    assert committed.version == 1 and committed.status == "trained"
    fresh = BrightnessAdapter(registry=local_registry)
    fresh.load_from_model(model.id)
    assert fresh.model == adapter.model


def test_train_and_load_on_both_backends(registry):
    ds = brightness_dataset(registry, sizes={"train": 4, "validation": 2})
    model = registry.create_model("both", labels=[BRIGHT, DARK], dataset_id=ds.id, subsets=SUBSETS)
    adapter = BrightnessAdapter(registry=registry)
    trained = adapter.train_model(model)
    assert trained.version == 1 and trained.status == "trained"
    fresh = BrightnessAdapter(registry=registry)
    fresh.load_from_model("both")
    assert fresh.model == adapter.model


def test_bad_progress_argument_does_not_leave_the_model_training(local_registry, ds, model):
    with pytest.raises(ValidationError, match=r"train_model\.progress"):
        BrightnessAdapter(registry=local_registry).train_model(model, progress=42)
    assert local_registry.get_model(model.id).status != "training"


def test_non_finite_training_metrics_do_not_fail_a_finished_run(local_registry, ds, model):
    """A diverged loss (NaN) is a metric value like any other: the run finished and was
    saved, so it must end ``trained`` with the metric stored as strict JSON, not ``failed``
    with a JSON encoder error while the saved version is nevertheless current."""

    class Diverged(BrightnessAdapter):
        def train(self, data_path, output_path, **kwargs):
            super().train(data_path, output_path)
            kwargs["on_epoch_end_callback"](0, 1, {"loss": float("nan"), "grad_norm": float("inf")})

    trained = Diverged(registry=local_registry).train_model(model)
    stored = local_registry.get_model(model.id)
    assert trained.status == stored.status == "trained", stored.status_message
    assert stored.version == 1
    json.loads(local_registry.store.get_bytes(layout.model_record(model.id)))


def test_items_with_the_same_path_are_not_silently_lost(local_registry, ds, model):
    """Two items may not end up as one file in the training layout: either the registry
    refuses a second item at the same path, or prepare_data keeps both."""
    from adapter_base import ConflictError
    from core_support import classification_gt, png_bytes

    local_registry.add_item(ds, "train/dup.png", png_bytes(200), subsets=["train"], annotations=classification_gt(BRIGHT))
    try:
        local_registry.add_item(ds, "train/dup.png", png_bytes(40), subsets=["train"], annotations=classification_gt(DARK))
    except ConflictError:
        return
    data_path, _ = loaded(local_registry, model).prepare_data(ds)
    records = list((data_path / "train" / "json").rglob("*.json"))
    assert len(records) == local_registry.count_items(ds, {"subset": "train"}) == 8


SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def test_training_failure_message_is_redacted(local_registry, ds, model, monkeypatch, caplog):
    """Like prediction reports and CLI errors, a failed run's recorded error never holds a secret."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)

    class Leaky(BrightnessAdapter):
        def train(self, data_path, output_path, **kwargs):
            raise ConnectionError(f"cannot upload to https://user:{SECRET}@bucket.example/")

    with pytest.raises(ConnectionError):
        Leaky(registry=local_registry).train_model(model)
    stored = local_registry.get_model(model.id)
    assert stored.status == "failed" and "ConnectionError" in stored.status_message
    assert SECRET not in stored.status_message
    assert SECRET not in local_registry.store.get_bytes(layout.model_record(model.id)).decode()
    assert SECRET not in caplog.text
