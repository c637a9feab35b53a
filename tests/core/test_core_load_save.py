"""``load_from_model`` and ``save_to_model`` end to end with a small real adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter_base import StoreError
from adapter_base.config import FRAMEWORK_DEFAULTS
from adapter_base.registry import layout
from core_support import BrightnessAdapter


def artifacts_of(registry, model, tmp_path, version=None):
    dest = tmp_path / f"check-{model.version}-{version}"
    registry.download_artifacts(registry.get_model(model.id), dest, version=version)
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


@pytest.fixture
def saved(registry, tmp_path):
    """A model saved once (version 1) with a threshold of 99."""
    model = registry.create_model("bright", configuration={"threshold": 99.0})
    adapter = BrightnessAdapter(registry=registry)
    adapter.load_from_model(model)
    return adapter.save_to_model()


def test_load_from_model_downloads_to_home_and_calls_load(registry, home, saved):
    adapter = BrightnessAdapter(registry=registry)
    path = adapter.load_from_model("bright", extra_flag=True)
    expected = home / "models" / "bright" / "artifacts"
    assert path == expected
    assert (expected / "weights.json").is_file()
    assert adapter.calls["load"] == [(str(expected), {"extra_flag": True}, ["weights.json"])]
    assert adapter.model == {"threshold": 99.0}
    assert adapter.model_entity.id == saved.id and adapter.model_entity.version == 1
    assert adapter.configuration["threshold"] == 99.0


def test_load_from_model_constructor_and_local_path(registry, tmp_path, saved):
    adapter = BrightnessAdapter(saved, registry=registry)  # the constructor loads
    assert adapter.model == {"threshold": 99.0}
    other = BrightnessAdapter(registry=registry)
    path = other.load_from_model(saved.id, local_path=str(tmp_path / "mine"))
    assert path == tmp_path / "mine" and (path / "weights.json").is_file()


def test_load_from_model_without_artifacts_gives_empty_dir(registry, home):
    model = registry.create_model("fresh", configuration={"threshold": 5.0})
    adapter = BrightnessAdapter(registry=registry)
    path = adapter.load_from_model(model)
    assert adapter.calls["load"][0][2] == [] and list(path.iterdir()) == []
    assert adapter.model == {"threshold": 5.0}


def test_load_from_model_overwrite_removes_stale_files(registry, saved, home):
    adapter = BrightnessAdapter(registry=registry)
    path = adapter.load_from_model(saved)
    (path / "stale.txt").write_text("old")
    adapter.load_from_model(saved)
    assert not (path / "stale.txt").exists()
    (path / "stale.txt").write_text("old")
    adapter.load_from_model(saved, overwrite=False)
    assert (path / "stale.txt").exists()


def test_load_from_model_verifies_digests(registry, saved, home):
    registry.store.put_bytes(layout.artifact_file(saved.id, 1, "weights.json"), b'{"threshold": 0.0}')
    adapter = BrightnessAdapter(registry=registry)
    with pytest.raises(StoreError, match="digest mismatch"):
        adapter.load_from_model(saved)
    assert adapter.calls["load"] == []  # load is never handed unverified files
    assert not (home / "models" / "bright" / "artifacts" / "weights.json").exists()


def test_save_to_model_creates_a_version_and_persists_configuration(registry, tmp_path, saved):
    assert saved.version == 1
    assert json.loads(artifacts_of(registry, saved, tmp_path)["weights.json"]) == {"threshold": 99.0}
    adapter = BrightnessAdapter(registry=registry, configuration={"epochs": 7})
    adapter.load_from_model(saved)
    adapter.model = {"threshold": 42.0}
    v2 = adapter.save_to_model()
    assert v2.version == 2
    stored = registry.get_model(saved.id)
    assert stored.version == 2
    assert stored.configuration["epochs"] == 7 and stored.configuration["threshold"] == 99.0
    assert set(FRAMEWORK_DEFAULTS) <= set(stored.configuration)
    assert json.loads(artifacts_of(registry, stored, tmp_path)["weights.json"]) == {"threshold": 42.0}
    assert json.loads(artifacts_of(registry, stored, tmp_path, version=1)["weights.json"]) == {"threshold": 99.0}
    assert adapter.model_entity.version == 2


def test_save_to_model_replace_false_carries_over_old_files(registry, tmp_path, saved):
    class TwoFiles(BrightnessAdapter):
        def save(self, local_path, **kwargs):
            super().save(local_path, **kwargs)
            Path(local_path, "extra.bin").write_bytes(b"extra-v2")

    two = TwoFiles(registry=registry)
    two.load_from_model(saved)
    v2 = two.save_to_model()
    assert sorted(f.path for f in v2.artifacts.files) == ["extra.bin", "weights.json"]

    adapter = BrightnessAdapter(registry=registry)
    adapter.load_from_model(v2)
    adapter.model = {"threshold": 1.0}
    v3 = adapter.save_to_model(replace=False)
    files = artifacts_of(registry, v3, tmp_path)
    assert files == {"weights.json": b'{"threshold": 1.0}', "extra.bin": b"extra-v2"}

    v4 = adapter.save_to_model(replace=True)
    assert [f.path for f in v4.artifacts.files] == ["weights.json"]


def test_save_to_model_cleanup(registry, tmp_path, saved):
    adapter = BrightnessAdapter(registry=registry)
    adapter.load_from_model(saved)
    keep = tmp_path / "keep"
    adapter.save_to_model(local_path=str(keep))
    assert (keep / "weights.json").is_file()
    gone = tmp_path / "gone"
    adapter.save_to_model(local_path=str(gone), cleanup=True, note="kw")
    assert not gone.exists()
    assert adapter.calls["save"][-1] == (str(gone), {"note": "kw"})
    assert registry.get_model(saved.id).version == 3


def test_save_to_model_own_temp_dir_is_removed(registry, saved):
    adapter = BrightnessAdapter(registry=registry)
    adapter.load_from_model(saved)
    adapter.save_to_model()
    tmp_dir = Path(adapter.calls["save"][0][0])
    assert not tmp_dir.exists()


def test_failed_save_leaves_version_unchanged(registry, saved):
    class Broken(BrightnessAdapter):
        def save(self, local_path, **kwargs):
            Path(local_path, "half.bin").write_bytes(b"x")
            raise OSError("disk full")

    adapter = Broken(registry=registry)
    adapter.load_from_model(saved)
    with pytest.raises(OSError, match="disk full"):
        adapter.save_to_model()
    assert registry.get_model(saved.id).version == 1
    assert not registry.store.exists(layout.manifest(saved.id, 2))


def test_load_of_an_older_version_stamps_predictions_with_that_version(local_registry, tmp_path):
    """``load_from_model(version=1)`` on a model at version 2 loads v1's files; what it
    predicts must say v1, or provenance and ``resume`` (which compares versions) are wrong."""
    from core_support import brightness_dataset

    registry = local_registry
    ds = brightness_dataset(registry, sizes={"test": 2})
    model = registry.create_model("versions")
    adapter = BrightnessAdapter(registry=registry)
    adapter.load_from_model(model)
    adapter.save_to_model()
    adapter.model = {"threshold": 300.0}
    adapter.save_to_model()
    assert registry.get_model(model.id).version == 2

    old = BrightnessAdapter(registry=registry)
    old.load_from_model(model, version=1)
    assert old.model == {"threshold": 128.0}
    report = old.predict_dataset(ds)
    assert report.ok
    assert report.model_version == 1
    for item in local_registry.iter_items(ds):
        assert registry.get_predictions(item, model.id).model_version == 1
