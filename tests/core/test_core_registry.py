"""The registry on both backends: names, items, annotations, predictions, versioned artifacts."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import pytest

from adapter_base import (
    Annotation,
    AnnotationCollection,
    ConflictError,
    Item,
    ModelInfo,
    NotFoundError,
    PredictionSet,
    Registry,
    StoreError,
    ValidationError,
)
from adapter_base.registry import layout
from adapter_base.registry.artifacts import upload_tree
from core_support import Counter, classification_gt, instrument, png_bytes


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def prediction(item: Item, model, label: str, confidence: float = 0.5) -> PredictionSet:
    info = ModelInfo(confidence=confidence, model_id=model.id, model_name=model.name, model_version=model.version)
    return PredictionSet(
        item_id=item.id,
        model_id=model.id,
        model_name=model.name,
        model_version=model.version,
        annotations=[Annotation.classification(label, model=info)],
    )


V1 = {"weights.bin": b"\x00\x01weights-v1" * 100, "config/labels.json": b'["a", "b"]', "empty.txt": b""}


@pytest.fixture
def model_v1(registry: Registry, tmp_path: Path):
    model = registry.create_model("net", labels=["a", "b"])
    return registry.upload_artifacts(model, write_tree(tmp_path / "v1", V1))


# --------------------------------------------------------------------------- names


def test_dataset_names_are_unique_and_resolve_by_name_or_id(registry):
    ds = registry.create_dataset("cats", labels=["cat"], metadata={"owner": "me"})
    with pytest.raises(ConflictError, match="cats"):
        registry.create_dataset("cats")
    assert registry.get_dataset("cats") == ds
    assert registry.get_dataset(ds.id) == ds
    other = registry.create_dataset("dogs")
    assert [d.name for d in registry.list_datasets()] == ["cats", "dogs"]
    with pytest.raises(NotFoundError, match="nope"):
        registry.get_dataset("nope")
    registry.delete_dataset(other)
    with pytest.raises(NotFoundError):
        registry.get_dataset("dogs")
    assert registry.create_dataset("dogs").id != other.id  # the name is free again


def test_model_names_are_unique_and_resolve_by_name_or_id(registry):
    model = registry.create_model("net", configuration={"lr": 0.1}, labels=["a"])
    with pytest.raises(ConflictError, match="net"):
        registry.create_model("net")
    assert registry.get_model("net") == model
    assert registry.get_model(model.id) == model
    assert registry.get_model("net").configuration == {"lr": 0.1}
    registry.create_model("net-2")
    assert sorted(m.name for m in registry.list_models()) == ["net", "net-2"]
    for bad in ("", "a/b", "../x", "-lead", "has space", "x" * 129):
        with pytest.raises(ValidationError, match=r"Model\.name"):
            registry.create_model(bad)
    for missing in ("ghost", "a/../b", ".."):
        with pytest.raises(NotFoundError):
            registry.get_model(missing)


def test_listings_are_sorted_by_name(registry):
    """``list_datasets`` / ``list_models`` promise "by name": ``net`` before ``net-2``."""
    for name in ("net-2", "net", "alpha"):
        registry.create_dataset(name)
        registry.create_model(name)
    assert [d.name for d in registry.list_datasets()] == ["alpha", "net", "net-2"]
    assert [m.name for m in registry.list_models()] == ["alpha", "net", "net-2"]


def test_update_item_and_dataset_persist(registry):
    ds = registry.create_dataset("d")
    item = registry.add_item(ds, "a.png", png_bytes(10))
    item.subsets = ["test"]
    item.metadata = {"k": 1}
    registry.update_item(item)
    assert registry.get_item(ds.id, item.id).subsets == ["test"]
    ds.labels = ["x", "y"]
    registry.update_dataset(ds)
    assert registry.get_dataset("d").labels == ["x", "y"]


# --------------------------------------------------------------------------- items


@pytest.fixture
def listing(registry):
    ds = registry.create_dataset("listing")
    items = {}
    for i in range(12):
        subset = ["train", "validation", "test"][i % 3]
        path = f"{subset}/{'cats' if i % 2 else 'dogs'}/{i:02d}.png"
        items[i] = registry.add_item(
            ds, path, png_bytes(i), subsets=[subset], metadata={"i": i, "cam": {"id": "even" if i % 2 == 0 else "odd"}}
        )
    return ds, items


def test_item_listing_with_filters(registry, listing):
    ds, items = listing

    def ids(flt):
        return sorted(it.id for it in registry.iter_items(ds, flt))

    assert ids(None) == sorted(it.id for it in items.values())
    assert ids({"subset": "train"}) == sorted(items[i].id for i in (0, 3, 6, 9))
    assert ids({"path_prefix": "validation/cats"}) == sorted(items[i].id for i in (1, 7))
    assert ids({"path_prefix": "/test/"}) == sorted(items[i].id for i in (2, 5, 8, 11))
    assert ids({"metadata": {"cam.id": "odd", "i": 5}}) == [items[5].id]
    assert ids({"item_ids": [items[4].id, items[10].id]}) == sorted([items[4].id, items[10].id])
    assert ids({"subset": "train", "item_ids": [items[4].id, items[3].id]}) == [items[3].id]
    assert ids({"metadata": {"cam.id": "none"}}) == []
    assert registry.count_items(ds, {"subset": "test"}) == 4
    with pytest.raises(ValidationError, match=r"Filters\.bogus"):
        list(registry.iter_items(ds, {"bogus": 1}))


def test_item_ids_filter_reports_missing_ids(registry, listing):
    ds, items = listing
    results = list(registry.iter_item_results(ds, {"item_ids": [items[0].id, "missing0000"]}))
    assert [r[0] for r in results] == [items[0].id, "missing0000"]
    assert results[0][1] == items[0]
    assert isinstance(results[1][1], NotFoundError)
    assert [it.id for it in registry.iter_items(ds, {"item_ids": [items[0].id, "missing0000"]})] == [items[0].id]


def test_item_bytes_roundtrip(registry, tmp_path):
    ds = registry.create_dataset("bytes")
    data = png_bytes(77, size=(33, 21))
    item = registry.add_item(ds, "deep/dir/a.png", data, metadata={"x": 1})
    assert item.size == len(data) and item.mimetype == "image/png" and item.name == "a.png"
    assert registry.read_item(item) == data
    assert registry.download_item(item, tmp_path / "x" / "a.png").read_bytes() == data
    src = tmp_path / "note.txt"
    src.write_text("hello")
    text_item = registry.add_item(ds, "notes/note.txt", src)
    assert text_item.mimetype == "text/plain" and text_item.size == 5
    assert registry.read_item(text_item) == b"hello"


def test_listing_is_lazy(registry):
    ds = registry.create_dataset("lazy")
    for i in range(40):
        registry.add_item(ds, f"{i:03d}.txt", b"x")
    reads = Counter()

    def get_with_etag(base, self, key):
        if "/records/" in key:
            reads.add(key)
        return base.get_with_etag(self, key)

    instrument(registry.store, get_with_etag=get_with_etag)
    lazy = Registry(registry.store, io_workers=2)  # window of 8 records
    try:
        it = lazy.iter_items(ds)
        assert inspect.isgenerator(it)
        assert reads.calls == []  # nothing read before the first next()
        first = next(it)
        assert isinstance(first, Item)
        assert 1 <= len(reads.calls) <= 9, f"{len(reads.calls)} of 40 records read for one item"
        rest = list(it)
        assert len(rest) == 39
        assert len(reads.calls) == 40
    finally:
        lazy.pool.shutdown(wait=True)


def test_unreadable_record_yields_an_error_and_the_others_go_on(registry):
    ds = registry.create_dataset("broken")
    good = [registry.add_item(ds, f"{i}.txt", b"x") for i in range(5)]
    registry.store.put_bytes(layout.item_record(ds.id, "badjson"), b'{"truncated": ')
    registry.store.put_bytes(layout.item_record(ds.id, "badfield"), b'{"dataset_id": "x", "path": "/abs", "mimetype": "text/plain"}')
    results = dict(registry.iter_item_results(ds))
    assert set(results) == {it.id for it in good} | {"badjson", "badfield"}
    assert isinstance(results["badjson"], StoreError) and "not valid JSON" in str(results["badjson"])
    assert isinstance(results["badfield"], ValidationError) and "Item.path" in str(results["badfield"])
    assert all(results[it.id] == it for it in good)
    assert sorted(it.id for it in registry.iter_items(ds)) == sorted(it.id for it in good)
    assert registry.count_items(ds) == 5


# --------------------------------------------------------------------------- annotations


def test_ground_truth_rejects_model_info(registry):
    ds = registry.create_dataset("gt")
    item = registry.add_item(ds, "a.png", png_bytes(1), annotations=classification_gt("cat"))
    assert [a.label for a in registry.get_ground_truth(item)] == ["cat"]
    bad = AnnotationCollection()
    bad.add_classification("dog")
    bad.add_box(0, 0, 1, 1, "dog", confidence=0.9)
    with pytest.raises(ValidationError) as exc:
        registry.set_ground_truth(item, bad)
    assert exc.value.field == "annotations[1].model"
    assert [a.label for a in registry.get_ground_truth(item)] == ["cat"]  # unchanged
    with pytest.raises(ValidationError, match="ground truth must not carry model info"):
        registry.add_item(ds, "b.png", png_bytes(2), annotations=bad)
    assert registry.count_items(ds) == 1  # the rejected item was not stored
    assert [o.key for o in registry.store.list(f"datasets/{ds.id}/binaries/")] == [layout.item_binary(ds.id, item.id)]


def test_ground_truth_of_item_without_annotations_is_empty(registry):
    ds = registry.create_dataset("gt-empty")
    item = registry.add_item(ds, "a.png", png_bytes(1))
    gt = registry.get_ground_truth(item)
    assert len(gt) == 0 and gt.item_id == item.id


def test_predictions_are_keyed_by_model_id(registry):
    ds = registry.create_dataset("preds")
    item = registry.add_item(ds, "a.png", png_bytes(1), annotations=classification_gt("cat"))
    m1 = registry.create_model("first")
    m2 = registry.create_model("second")
    registry.put_predictions(prediction(item, m1, "cat", 0.9), ds.id)
    registry.put_predictions(prediction(item, m2, "dog", 0.4), ds.id)
    assert sorted(registry.prediction_model_ids(item)) == sorted([m1.id, m2.id])
    assert registry.get_predictions(item, m1.id).annotations[0].label == "cat"
    assert registry.get_predictions(item, m2.id).annotations[0].label == "dog"

    # re-predicting with m1 replaces only m1's set
    registry.put_predictions(prediction(item, m1, "bird", 0.7), ds.id)
    assert [a.label for a in registry.get_predictions(item, m1.id).annotations] == ["bird"]
    assert [a.label for a in registry.get_predictions(item, m2.id).annotations] == ["dog"]

    # ground truth never includes predictions; get_annotations has all of them
    assert [a.label for a in registry.get_ground_truth(item)] == ["cat"]
    everything = registry.get_annotations(item)
    assert sorted(a.label for a in everything) == ["bird", "cat", "dog"]
    assert sorted(a.label for a in everything.predictions()) == ["bird", "dog"]

    registry.delete_predictions(item, m2.id)
    assert registry.get_predictions(item, m2.id) is None
    assert registry.prediction_model_ids(item) == [m1.id]


def test_unstamped_prediction_set_is_refused(registry):
    ds = registry.create_dataset("refuse")
    item = registry.add_item(ds, "a.png", png_bytes(1))
    m = registry.create_model("m")
    pset = PredictionSet(item_id=item.id, model_id=m.id, model_name=m.name, model_version=0, annotations=[Annotation.classification("x")])
    with pytest.raises(ValidationError, match="not stamped"):
        registry.put_predictions(pset, ds.id)
    assert registry.get_predictions(item, m.id) is None


# --------------------------------------------------------------------------- artifacts


def test_artifacts_upload_and_download_with_digests(registry, model_v1, tmp_path):
    assert model_v1.version == 1 and registry.get_model("net").version == 1
    manifest = model_v1.artifacts
    assert sorted(f.path for f in manifest.files) == sorted(V1)
    for f in manifest.files:
        assert f.sha256 == hashlib.sha256(V1[f.path]).hexdigest() and f.size == len(V1[f.path])
    assert registry.get_manifest(model_v1) == manifest
    assert registry.store.exists(layout.manifest(model_v1.id, 1))
    dest = tmp_path / "download"
    registry.download_artifacts(model_v1, dest)
    assert read_tree(dest) == V1

    v2 = registry.upload_artifacts(model_v1, write_tree(tmp_path / "v2", {"weights.bin": b"v2"}))
    assert v2.version == 2 and registry.get_model(model_v1.id).version == 2
    registry.download_artifacts(v2, tmp_path / "d2")
    assert read_tree(tmp_path / "d2") == {"weights.bin": b"v2"}
    registry.download_artifacts(v2, tmp_path / "d1", version=1)  # older versions stay readable
    assert read_tree(tmp_path / "d1") == V1


@pytest.mark.parametrize("tamper", ["different-size", "same-size"])
def test_tampered_artifact_fails_digest_check_and_leaves_no_file(registry, model_v1, tmp_path, tamper):
    key = layout.artifact_file(model_v1.id, 1, "weights.bin")
    original = registry.store.get_bytes(key)
    evil = b"evil" if tamper == "different-size" else bytes([original[0] ^ 1]) + original[1:]
    registry.store.put_bytes(key, evil)
    dest = tmp_path / "dl"
    with pytest.raises(StoreError, match="digest mismatch") as exc:
        registry.download_artifacts(model_v1, dest)
    assert "weights.bin" in str(exc.value)
    assert not (dest / "weights.bin").exists()
    assert not [p for p in dest.rglob("*") if "partial" in p.name]


def test_clone_keeps_parent_id_and_copies_artifacts(registry, model_v1, tmp_path):
    clone = registry.clone_model(model_v1, "net-clone", configuration={"lr": 0.01})
    assert clone.id != model_v1.id and clone.name == "net-clone"
    assert clone.parent_model_id == model_v1.id
    assert clone.version == 1 and clone.configuration == {"lr": 0.01} and clone.labels == ["a", "b"]
    assert [f.sha256 for f in clone.artifacts.files] == [f.sha256 for f in model_v1.artifacts.files]
    assert registry.get_model("net-clone") == clone
    registry.delete_model(registry.get_model(model_v1.id))
    with pytest.raises(NotFoundError):
        registry.get_model("net")
    registry.download_artifacts(registry.get_model("net-clone"), tmp_path / "c")
    assert read_tree(tmp_path / "c") == V1  # independent of the deleted parent
    with pytest.raises(ConflictError):
        registry.clone_model(clone, "net-clone")


def test_clone_of_model_without_artifacts(registry):
    parent = registry.create_model("bare", labels=["x"])
    clone = registry.clone_model(parent, "bare-clone")
    assert clone.version == 0 and clone.artifacts is None and clone.parent_model_id == parent.id


def test_set_alias(registry, model_v1, tmp_path):
    v2 = registry.upload_artifacts(model_v1, write_tree(tmp_path / "v2", {"w": b"2"}))
    m = registry.set_alias(v2, "production")
    assert m.aliases == {"production": 2}
    m = registry.set_alias(m, "stable", 1)
    assert registry.get_model("net").aliases == {"production": 2, "stable": 1}
    with pytest.raises(NotFoundError):
        registry.set_alias(m, "future", 7)
    assert registry.get_model("net").aliases == {"production": 2, "stable": 1}
    bare = registry.create_model("bare")
    with pytest.raises(ValidationError, match=r"Model\.aliases"):
        registry.set_alias(bare, "production")


def test_stage_then_commit(registry, model_v1, tmp_path):
    staged = registry.stage_artifacts(model_v1, write_tree(tmp_path / "cand", {"weights.bin": b"candidate"}), "run-1")
    assert [f.path for f in staged.files] == ["weights.bin"]
    current = registry.get_model("net")
    assert current.version == 1 and current.artifacts == model_v1.artifacts  # staging is invisible
    committed = registry.commit_staged(current, "run-1", status="trained")
    assert committed.version == 2 and committed.status == "trained"
    assert registry.get_model("net").version == 2
    registry.download_artifacts(committed, tmp_path / "d")
    assert read_tree(tmp_path / "d") == {"weights.bin": b"candidate"}
    assert list(registry.store.list(layout.staging_prefix(model_v1.id, "run-1"))) == []
    with pytest.raises(NotFoundError, match="run-1"):
        registry.commit_staged(committed, "run-1")
    with pytest.raises(ValidationError):
        registry.stage_artifacts(committed, tmp_path / "cand", "../escape")


def test_failed_upload_midway_leaves_the_version_unchanged(registry, model_v1, tmp_path):
    puts = Counter()
    armed = [True]

    def put_file(base, self, key, path, content_type=None):
        if armed[0] and "/versions/000002/" in key and puts.add(key) == 2:
            raise StoreError("injected failure on the 2nd file")
        return base.put_file(self, key, path, content_type)

    instrument(registry.store, put_file=put_file)
    new = write_tree(tmp_path / "v2", {"a.bin": b"a2", "b.bin": b"b2", "c.bin": b"c2"})
    with pytest.raises(StoreError, match="injected"):
        registry.upload_artifacts(model_v1, new)
    current = registry.get_model("net")
    assert current.version == 1 and current.artifacts == model_v1.artifacts
    assert not registry.store.exists(layout.manifest(model_v1.id, 2))
    registry.download_artifacts(current, tmp_path / "still-v1")
    assert read_tree(tmp_path / "still-v1") == V1

    # a retry that succeeds becomes version 2 with exactly the new files
    armed[0] = False
    retried = registry.upload_artifacts(current, new)
    assert retried.version == 2
    registry.download_artifacts(retried, tmp_path / "v2-dl")
    assert read_tree(tmp_path / "v2-dl") == {"a.bin": b"a2", "b.bin": b"b2", "c.bin": b"c2"}


def test_files_of_an_unfinished_version_are_invisible(registry, model_v1, tmp_path):
    new = write_tree(tmp_path / "v2", {"weights.bin": b"half-done"})
    files = upload_tree(registry.store, new, lambda rel: layout.artifact_file(model_v1.id, 2, rel), registry.pool)
    assert [f.path for f in files] == ["weights.bin"]
    current = registry.get_model(model_v1.id)
    assert current.version == 1
    registry.download_artifacts(current, tmp_path / "dl")
    assert read_tree(tmp_path / "dl") == V1
    with pytest.raises(NotFoundError):
        registry.get_manifest(current, 2)


def test_failed_commit_midway_leaves_the_version_unchanged(registry, model_v1, tmp_path):
    registry.stage_artifacts(model_v1, write_tree(tmp_path / "cand", {"a.bin": b"a", "b.bin": b"b", "c.bin": b"c"}), "run-2")
    copies = Counter()
    armed = [True]

    def copy(base, self, src, dst):
        if armed[0] and copies.add(dst) == 2:
            raise StoreError("injected copy failure")
        return base.copy(self, src, dst)

    instrument(registry.store, copy=copy)
    with pytest.raises(StoreError, match="injected"):
        registry.commit_staged(model_v1, "run-2")
    current = registry.get_model(model_v1.id)
    assert current.version == 1 and current.artifacts == model_v1.artifacts
    assert not registry.store.exists(layout.manifest(model_v1.id, 2))
    armed[0] = False
    committed = registry.commit_staged(current, "run-2")  # the staged files are still there to retry
    assert committed.version == 2
    registry.download_artifacts(committed, tmp_path / "dl")
    assert read_tree(tmp_path / "dl") == {"a.bin": b"a", "b.bin": b"b", "c.bin": b"c"}


@pytest.mark.parametrize("fails", ["binary", "ground truth", "record"])
def test_a_failed_add_leaves_nothing_behind_and_the_path_free(registry, fails):
    ds = registry.create_dataset("adds", labels=["cat"])
    key_of = {"binary": "/binaries/", "ground truth": "/ground_truth.json", "record": "/records/"}[fails]
    armed = [True]

    def put_json(base, self, key, value):
        if armed[0] and key_of in key:
            raise StoreError(f"injected failure writing the {fails}")
        return base.put_json(self, key, value)

    def put_bytes(base, self, key, data, content_type=None):
        if armed[0] and key_of in key:
            raise StoreError(f"injected failure writing the {fails}")
        return base.put_bytes(self, key, data, content_type)

    before = {o.key for o in registry.store.list(f"datasets/{ds.id}/")}
    instrument(registry.store, put_json=put_json, put_bytes=put_bytes)
    with pytest.raises(StoreError, match="injected"):
        registry.add_item(ds, "a/cat.png", png_bytes(1), annotations=classification_gt("cat"))
    assert {o.key for o in registry.store.list(f"datasets/{ds.id}/")} == before, "the failed add left keys behind"
    armed[0] = False
    item = registry.add_item(ds, "a/cat.png", png_bytes(1), annotations=classification_gt("cat"))
    assert registry.read_item(item) == png_bytes(1)
