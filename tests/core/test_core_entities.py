"""Entities: JSON round trips, validation errors that name the bad field, property tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter_base import (
    Annotation,
    AnnotationCollection,
    ArtifactManifest,
    Dataset,
    Filters,
    Item,
    Model,
    ModelInfo,
    PredictionSet,
    ValidationError,
)
from adapter_base.entities import ArtifactFile, decode_mask, encode_mask

SHA = "ab" * 32


def roundtrip(entity):
    cls = type(entity)
    text = entity.to_json()
    json.loads(text, parse_constant=_no_constants)  # strict JSON
    back = cls.from_json(text)
    assert back == entity
    assert cls.from_dict(json.loads(text)) == entity
    return back


def _no_constants(name):
    raise AssertionError(f"non-standard JSON constant {name}")


# --------------------------------------------------------------------------- round trips


def test_item_roundtrip_keeps_every_field():
    item = Item(
        dataset_id="ds1",
        path="train/cats/0001.png",
        mimetype="image/png",
        size=123,
        subsets=["train", "extra"],
        metadata={"camera": {"id": "a", "iso": 400}, "tags": ["x", "y"], "ok": True, "none": None},
    )
    back = roundtrip(item)
    assert back.id == item.id and back.name == "0001.png" and back.dir == "/train/cats"


def test_dataset_roundtrip():
    ds = Dataset(name="digits", labels=["0", "1"], metadata={"source": "sklearn", "seed": 3})
    back = roundtrip(ds)
    assert back.labels == ["0", "1"] and back.metadata["seed"] == 3


def test_filters_roundtrip_and_coerce():
    flt = Filters(subset="train", path_prefix="train/cats", metadata={"camera.id": "a"}, item_ids=["i1", "i2"])
    roundtrip(flt)
    assert Filters.coerce(flt.to_dict()) == flt
    assert Filters.coerce(None) == Filters()
    with pytest.raises(ValidationError) as exc:
        Filters.coerce(["subset"])
    assert "Filters" in str(exc.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Annotation.classification("cat"),
        lambda: Annotation.classification("cat", confidence=0.25),
        lambda: Annotation.box(1.5, 2, 10, 20.25, "car", confidence=1.0, attributes={"occluded": True}),
        lambda: Annotation.polygon([(0, 0), (10, 0), (5, 7.5)], "roof", metadata={"note": "x"}),
        lambda: Annotation.point(3, 4.5, "eye", confidence=0.0),
        lambda: Annotation.binary_mask(np.eye(3, 5, dtype=bool), "road", confidence=0.7),
    ],
    ids=["classification", "classification-pred", "box", "polygon", "point", "binary_mask"],
)
def test_annotation_roundtrip_every_type(build):
    ann = build()
    back = roundtrip(ann)
    assert back.type == ann.type and back.label == ann.label and back.confidence == ann.confidence
    assert back.is_prediction == (ann.confidence is not None)


def test_binary_mask_encode_decode():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (4, 7), (16, 3)]:
        for fill in ("random", "all", "none"):
            if fill == "random":
                mask = rng.random(shape) > 0.5
            else:
                mask = np.full(shape, fill == "all")
            coords = encode_mask(mask)
            assert coords["height"] == shape[0] and coords["width"] == shape[1]
            assert sum(coords["rle"]) == mask.size
            assert np.array_equal(decode_mask(coords), mask)
            ann = Annotation.binary_mask(mask, "m")
            assert np.array_equal(Annotation.from_json(ann.to_json()).mask(), mask)


def test_binary_mask_rejects_non_2d_and_bad_rle():
    with pytest.raises(ValidationError, match=r"Annotation\.coordinates"):
        Annotation.binary_mask(np.zeros((2, 2, 2), bool), "m")
    bad = {"type": "binary_mask", "label": "m", "coordinates": {"height": 2, "width": 2, "rle": [1, 1, 1]}}
    with pytest.raises(ValidationError) as exc:
        Annotation.from_dict(bad)
    assert exc.value.field == "coordinates.rle"
    with pytest.raises(TypeError):
        Annotation.classification("x").mask()


def test_annotation_collection_roundtrip_and_views():
    coll = AnnotationCollection(item_id="item-1")
    coll.add_classification("cat")
    coll.add_box(0, 0, 5, 5, "cat", confidence=0.5, model=ModelInfo(confidence=0.5, model_id="m1", model_name="a"))
    coll.add_point(1, 1, "nose", model=ModelInfo(confidence=0.9, model_id="m2"))
    back = roundtrip(coll)
    assert len(back) == 3
    assert [a.label for a in back.ground_truth()] == ["cat"]
    assert [a.type for a in back.predictions()] == ["box", "point"]
    assert [a.type for a in back.predictions("m2")] == ["point"]
    with pytest.raises(ValidationError):
        coll.add({"type": "classification"})


def test_model_roundtrip_with_manifest():
    manifest = ArtifactManifest(
        model_id="m1",
        version=2,
        files=[ArtifactFile(path="weights/a.npz", size=10, sha256=SHA), ArtifactFile(path="labels.json", size=0, sha256="0" * 64)],
    )
    model = Model(
        name="digits-mlp",
        id="m1",
        adapter="examples.digits.adapter:DigitsAdapter",
        configuration={"epochs": 5, "nested": {"lr": 0.1}},
        labels=["0", "1"],
        dataset_id="ds",
        subsets={"train": {"subset": "train"}, "validation": {"subset": "validation", "path_prefix": "val/"}},
        status="trained",
        version=2,
        artifacts=manifest,
        parent_model_id="p0",
        metrics={"evaluation": {"accuracy": 0.9}},
        aliases={"production": 2},
    )
    back = roundtrip(model)
    assert isinstance(back.artifacts, ArtifactManifest) and isinstance(back.artifacts.files[0], ArtifactFile)
    assert back.artifacts.total_size == 10
    assert back.subset_filters("validation") == Filters(subset="validation", path_prefix="val/")
    with pytest.raises(ValidationError, match="no subset named 'test'"):
        back.subset_filters("test")


def test_prediction_set_roundtrip():
    info = ModelInfo(confidence=0.75, model_id="m1", model_name="net", model_version=3)
    pset = PredictionSet(
        item_id="i1",
        model_id="m1",
        model_name="net",
        model_version=3,
        annotations=[Annotation.box(0, 0, 1, 1, "a", model=info), Annotation.classification("b", model=info)],
        run_id="run1",
    )
    back = roundtrip(pset)
    assert back.collection().item_id == "i1" and len(back.collection()) == 2


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "path", ["/abs/a.png", "../a.png", "a/../b.png", "a//b.png", "./a.png", "", "C:/x.png", "a/\x01.png"]
)
def test_item_path_must_be_safe_relative(path):
    with pytest.raises(ValidationError) as exc:
        Item(dataset_id="d", path=path, mimetype="image/png").validate()
    assert str(exc.value).startswith("Item.path:")
    assert exc.value.field == "path"


@pytest.mark.parametrize(
    "field,value",
    [("mimetype", "video/x-unknown"), ("size", -1), ("size", 1.5), ("subsets", "train"), ("subsets", [""]), ("metadata", [1])],
)
def test_item_bad_field_is_named(field, value):
    data = Item(dataset_id="d", path="a.png", mimetype="image/png").to_dict()
    data[field] = value
    with pytest.raises(ValidationError) as exc:
        Item.from_dict(data)
    assert exc.value.entity == "Item" and exc.value.field == field
    assert str(exc.value).startswith(f"Item.{field}:")


@pytest.mark.parametrize("confidence", [-0.01, 1.01, float("nan"), float("inf"), float("-inf"), True, "0.5", None])
def test_confidence_outside_unit_interval_rejected(confidence):
    with pytest.raises(ValidationError) as exc:
        ModelInfo(confidence=confidence).validate()
    assert str(exc.value).startswith("ModelInfo.confidence:")
    ann = {"type": "classification", "label": "a", "model": {"confidence": confidence}}
    with pytest.raises(ValidationError, match=r"ModelInfo\.confidence"):
        Annotation.from_dict(ann)


@pytest.mark.parametrize("confidence", [1.5, -1, float("nan"), float("inf")])
def test_builders_reject_bad_confidence(confidence):
    with pytest.raises(ValidationError, match=r"ModelInfo\.confidence"):
        Annotation.classification("a", confidence=confidence)
    with pytest.raises(ValidationError, match=r"ModelInfo\.confidence"):
        Annotation.box(0, 0, 1, 1, "a", confidence=confidence)


def test_nan_and_infinity_in_json_text_rejected():
    text = '{"type": "point", "label": "a", "coordinates": {"x": NaN, "y": 1}}'
    with pytest.raises(ValidationError) as exc:
        Annotation.from_json(text)
    assert exc.value.field == "coordinates.x"
    text = '{"type": "classification", "label": "a", "model": {"confidence": Infinity}}'
    with pytest.raises(ValidationError, match=r"ModelInfo\.confidence: must be finite"):
        Annotation.from_json(text)


@pytest.mark.parametrize(
    "coords,field",
    [
        ({"left": 0, "top": 0, "right": 1}, "coordinates"),
        ({"left": 0, "top": 0, "right": 1, "bottom": 1, "z": 0}, "coordinates"),
        ({"left": float("nan"), "top": 0, "right": 1, "bottom": 1}, "coordinates.left"),  # negative is allowed (raw detector output)
        ({"left": 0, "top": "0", "right": 1, "bottom": 1}, "coordinates.top"),
        ({"left": 0, "top": 0, "right": float("inf"), "bottom": 1}, "coordinates.right"),
        ({"left": 5, "top": 0, "right": 1, "bottom": 1}, "coordinates"),
    ],
)
def test_box_coordinates_errors_name_the_coordinate(coords, field):
    with pytest.raises(ValidationError) as exc:
        Annotation.from_dict({"type": "box", "label": "car", "coordinates": coords})
    assert exc.value.field == field
    assert str(exc.value).startswith(f"Annotation.{field}:")


def test_other_coordinate_errors():
    cases = [
        ({"type": "polygon", "coordinates": [[0, 0], [1, 1]]}, "coordinates"),
        ({"type": "polygon", "coordinates": [[0, 0], [1, 1], [2]]}, "coordinates[2]"),
        ({"type": "polygon", "coordinates": [[0, 0], [1, 1], [2, -3]]}, "coordinates.[2].y"),
        ({"type": "point", "coordinates": {"x": 1}}, "coordinates"),
        ({"type": "classification", "coordinates": {"x": 1, "y": 1}}, "coordinates"),
        ({"type": "ellipse", "coordinates": None}, "type"),
        ({"type": "binary_mask", "coordinates": {"height": 0, "width": 1, "rle": []}}, "coordinates.height"),
    ]
    for data, field in cases:
        with pytest.raises(ValidationError) as exc:
            Annotation.from_dict({"label": "a", **data})
        assert exc.value.field == field, data


def test_collection_errors_name_the_annotation_index():
    data = {
        "annotations": [
            {"type": "classification", "label": "ok"},
            {"type": "box", "label": "car", "coordinates": {"left": 0, "top": 0, "right": float("inf"), "bottom": 1}},
        ]
    }
    with pytest.raises(ValidationError) as exc:
        AnnotationCollection.from_dict(data)
    assert exc.value.field == "annotations[1].coordinates.right"
    assert str(exc.value).startswith("AnnotationCollection.annotations[1].coordinates.right:")


@pytest.mark.parametrize(
    "cls,text",
    [
        (Item, '{"dataset_id": "d", "path": "a.png", "mimetype": "image/png"'),
        (Item, '{"dataset_id": "d", "path": "a.png", '),
        (Annotation, '{"type": "box", "label": '),
        (Model, ""),
        (Model, "not json"),
        (Dataset, b"\xff\xfe\x00garbage"),
        (AnnotationCollection, '{"annotations": [}'),
        (PredictionSet, "{'item_id': 'single quotes'}"),
        (Filters, "[1, 2"),
    ],
)
def test_malformed_or_truncated_json_is_a_validation_error(cls, text):
    with pytest.raises(ValidationError) as exc:
        cls.from_json(text)
    assert exc.value.entity == cls.kind
    assert "malformed JSON" in str(exc.value)


@pytest.mark.parametrize("cls", [Item, Dataset, Annotation, Model, PredictionSet, ModelInfo, Filters])
def test_json_that_is_not_an_object_is_a_validation_error(cls):
    for text in ("[]", "3", '"x"', "null"):
        with pytest.raises(ValidationError, match=cls.kind):
            cls.from_json(text)


@pytest.mark.parametrize(
    "cls,data,missing",
    [
        (Item, {"path": "a.png", "mimetype": "image/png"}, "dataset_id"),
        (Item, {"dataset_id": "d", "mimetype": "image/png"}, "path"),
        (Dataset, {"labels": []}, "name"),
        (Annotation, {"label": "a"}, "type"),
        (Annotation, {"type": "classification"}, "label"),
        (ModelInfo, {"model_id": "m"}, "confidence"),
        (Model, {"version": 0}, "name"),
        (PredictionSet, {"item_id": "i", "model_id": "m", "model_name": "n"}, "model_version"),
        (ArtifactFile, {"path": "a", "size": 1}, "sha256"),
    ],
)
def test_missing_required_field_is_named(cls, data, missing):
    with pytest.raises(ValidationError) as exc:
        cls.from_dict(data)
    assert exc.value.field == missing
    assert str(exc.value) == f"{cls.kind}.{missing}: missing required field"


@pytest.mark.parametrize("cls", [Item, Dataset, Annotation, Model, PredictionSet, Filters, AnnotationCollection])
def test_unknown_field_is_named(cls):
    samples = {
        Item: Item(dataset_id="d", path="a.png", mimetype="image/png"),
        Dataset: Dataset(name="d"),
        Annotation: Annotation.classification("a"),
        Model: Model(name="m"),
        PredictionSet: PredictionSet(item_id="i", model_id="m", model_name="n", model_version=0),
        Filters: Filters(),
        AnnotationCollection: AnnotationCollection(),
    }
    data = samples[cls].to_dict()
    data["colour"] = "blue"
    with pytest.raises(ValidationError) as exc:
        cls.from_dict(data)
    assert exc.value.field == "colour"
    assert "unknown field" in str(exc.value)


def test_nested_unknown_field_in_model_info_is_named():
    with pytest.raises(ValidationError) as exc:
        Annotation.from_dict({"type": "classification", "label": "a", "model": {"confidence": 0.5, "score": 1}})
    assert str(exc.value).startswith("ModelInfo.score:")


def test_model_validation_names_fields():
    cases = [
        ({"name": "m", "status": "deployed-ish"}, "status"),
        ({"name": "m", "version": 1}, "artifacts"),
        ({"name": "m", "version": -1}, "version"),
        ({"name": "m", "configuration": {"lr": float("nan")}}, "configuration"),
        ({"name": "m", "subsets": {"train": {"subset": 3}}}, "subsets.train"),
        ({"name": "m", "aliases": {"production": 0}}, "aliases.production"),
        ({"name": "m", "labels": ["a", 1]}, "labels"),
        ({"name": ""}, "name"),
    ]
    for data, field in cases:
        with pytest.raises(ValidationError) as exc:
            Model.from_dict(data)
        assert exc.value.field == field, data
        assert str(exc.value).startswith(f"Model.{field}:")


def test_manifest_version_must_match_model_and_paths_are_safe():
    manifest = ArtifactManifest(model_id="m", version=1, files=[ArtifactFile(path="a", size=1, sha256=SHA)])
    with pytest.raises(ValidationError, match=r"Model\.artifacts"):
        Model(name="m", version=2, artifacts=manifest).validate()
    with pytest.raises(ValidationError, match=r"ArtifactFile\.path"):
        ArtifactFile.from_dict({"path": "../escape", "size": 1, "sha256": SHA})
    with pytest.raises(ValidationError, match=r"ArtifactFile\.sha256"):
        ArtifactFile.from_dict({"path": "a", "size": 1, "sha256": "XYZ"})
    dup = {"model_id": "m", "version": 1, "files": [{"path": "a", "size": 1, "sha256": SHA}] * 2}
    with pytest.raises(ValidationError, match="duplicate path"):
        ArtifactManifest.from_dict(dup)


def test_prediction_set_requires_stamped_annotations():
    data = {
        "item_id": "i",
        "model_id": "m",
        "model_name": "n",
        "model_version": 1,
        "annotations": [{"type": "classification", "label": "a", "model": {"confidence": 0.5, "model_id": "other"}}],
    }
    with pytest.raises(ValidationError) as exc:
        PredictionSet.from_dict(data)
    assert exc.value.field == "annotations[0].model"


def test_filters_match_subset_prefix_metadata_and_ids():
    item = Item(
        dataset_id="d", path="train/cats/a.png", mimetype="image/png", subsets=["train"], metadata={"cam": {"id": "x"}, "n": 1}
    )
    assert Filters().matches(item)
    assert Filters(subset="train").matches(item) and not Filters(subset="test").matches(item)
    assert Filters(path_prefix="train/cats").matches(item) and Filters(path_prefix="/train/").matches(item)
    assert not Filters(path_prefix="test/").matches(item)
    assert Filters(metadata={"cam.id": "x", "n": 1}).matches(item)
    assert not Filters(metadata={"cam.id": "y"}).matches(item)
    assert not Filters(metadata={"cam.missing": None}).matches(item)
    assert Filters(item_ids=[item.id]).matches(item) and not Filters(item_ids=["other"]).matches(item)


def test_free_form_fields_must_be_strict_json():
    """Like ``Model.configuration``, metadata that cannot be stored as strict JSON is a
    ``ValidationError`` naming the field when validated, not a ``ValueError``/``TypeError``
    later when the record is written (by then the item's bytes are already uploaded)."""
    builders = [
        (lambda bad: Item(dataset_id="d", path="a.png", mimetype="image/png", metadata={"when": bad}), "Item.metadata"),
        (lambda bad: Dataset(name="d", metadata={"when": bad}), "Dataset.metadata"),
        (lambda bad: Annotation(type="classification", label="a", attributes={"when": bad}), "Annotation.attributes"),
        (lambda bad: Annotation(type="classification", label="a", metadata={"when": bad}), "Annotation.metadata"),
    ]
    accepted = []
    for build, name in builders:
        for bad in (float("nan"), object()):
            try:
                build(bad).validate()
                accepted.append(f"{name}={bad!r}")
            except ValidationError as exc:
                assert f"{exc.entity}.{exc.field}" == name
    assert not accepted, f"validate() accepted values that to_json() cannot write: {accepted}"


# --------------------------------------------------------------------------- properties

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | _text
_json = st.recursive(_json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3), max_leaves=8)
_part = st.text(st.sampled_from("abcXYZ019_-. ()é中"), min_size=1, max_size=8).filter(lambda p: p not in (".", ".."))
_paths = st.lists(_part, min_size=1, max_size=4).map("/".join)
_coord = st.floats(min_value=0, max_value=1e6, allow_nan=False)
_conf = st.none() | st.floats(min_value=0, max_value=1)
_label = st.text(min_size=1, max_size=10)


@st.composite
def annotations(draw):
    kind = draw(st.sampled_from(["classification", "box", "polygon", "point", "binary_mask"]))
    label, conf = draw(_label), draw(_conf)
    kw = {"attributes": draw(st.dictionaries(_text, _json, max_size=2)), "metadata": draw(st.dictionaries(_text, _json, max_size=2))}
    if kind == "classification":
        return Annotation.classification(label, confidence=conf, **kw)
    if kind == "box":
        x0, x1 = sorted(draw(st.tuples(_coord, _coord)))
        y0, y1 = sorted(draw(st.tuples(_coord, _coord)))
        return Annotation.box(x0, y0, x1, y1, label, confidence=conf, **kw)
    if kind == "polygon":
        return Annotation.polygon(draw(st.lists(st.tuples(_coord, _coord), min_size=3, max_size=6)), label, confidence=conf, **kw)
    if kind == "point":
        return Annotation.point(draw(_coord), draw(_coord), label, confidence=conf, **kw)
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    mask = np.array(draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)), dtype=bool).reshape(h, w)
    return Annotation.binary_mask(mask, label, confidence=conf, **kw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(annotations())
def test_property_annotation_json_roundtrip(ann):
    back = Annotation.from_json(ann.to_json())
    assert back == ann
    if ann.type == "binary_mask":
        assert np.array_equal(back.mask(), ann.mask())


@settings(max_examples=150, deadline=None)
@given(
    path=_paths,
    mimetype=st.sampled_from(["image/png", "image/jpeg", "text/plain", "application/json"]),
    size=st.integers(0, 2**40),
    subsets=st.lists(st.text(min_size=1, max_size=6), max_size=3),
    metadata=st.dictionaries(_text, _json, max_size=4),
)
def test_property_item_json_roundtrip(path, mimetype, size, subsets, metadata):
    item = Item(dataset_id="ds", path=path, mimetype=mimetype, size=size, subsets=subsets, metadata=metadata)
    item.validate()
    text = item.to_json()
    assert Item.from_json(text) == item
    assert Item.from_json(text.encode()) == item


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_property_arbitrary_text_never_crashes_parsing(text):
    """Whatever the text, parsing an entity either works or raises ValidationError."""
    for cls in (Item, Annotation, Model):
        try:
            cls.from_json(text)
        except ValidationError:
            pass


def test_a_record_is_stored_as_its_to_dict_would_be(tmp_path) -> None:
    """``put_json`` writes an entity (nested annotations, model info, attributes) as the JSON of its ``to_dict()``."""
    from adapter_base.storage import LocalStore

    info = ModelInfo(confidence=0.25, model_id="m", model_name="n", model_version=2)
    anns = [
        Annotation.box(1.0, 2.0, 30.5, 40.0, "cat", model=info, attributes={"colour": ["black", 2]}),
        Annotation.classification("dog", model=info, metadata={"note": {"deep": True}}),
        Annotation.point(3, 4, "nose", model=info),
    ]
    pset = PredictionSet(item_id="i", model_id="m", model_name="n", model_version=2, annotations=anns, run_id="r")
    store = LocalStore(tmp_path)
    store.put_json("as-entity.json", pset)
    store.put_json("as-dict.json", pset.to_dict())
    assert store.get_bytes("as-entity.json") == store.get_bytes("as-dict.json")
    assert PredictionSet.from_dict(store.get_json("as-entity.json")) == pset


def test_with_model_copies_and_leaves_the_annotation_as_it_was() -> None:
    ann = Annotation.box(1, 2, 3, 4, "cat", confidence=0.5)
    info = ModelInfo(confidence=0.5, model_id="m", model_name="n", model_version=1)
    new = ann.with_model(info)
    assert new.model is info and ann.model is not info and ann.model.model_id is None
    assert (new.id, new.type, new.label, new.coordinates) == (ann.id, ann.type, ann.label, ann.coordinates)
    assert type(new) is type(ann)


def test_ids_are_unaffected_by_the_users_seed_and_differ_across_a_fork():
    """Annotation, item and model ids come from the framework's own generator: a model that seeds ``random``
    for reproducibility must not make two runs (or two forked workers) draw the same ids."""
    import os
    import random

    from adapter_base.entities._base import new_id

    random.seed(0)
    first = [new_id() for _ in range(3)]
    random.seed(0)
    again = [new_id() for _ in range(3)]
    assert len(set(first + again)) == 6 and all(len(i) == 32 and int(i, 16) >= 0 for i in first)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child's first ids, sent back
        os.write(write, "".join(new_id() for _ in range(3)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 96).decode()
    mine = "".join(new_id() for _ in range(3))
    os.close(read)
    os.close(write)
    assert len(child) == 96 and child != mine
