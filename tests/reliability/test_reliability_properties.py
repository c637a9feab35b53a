"""Property-based tests (hypothesis): entity JSON round trips, and store key validation.

* Every valid entity survives ``to_json`` -> ``from_json`` unchanged, as strict JSON.
* Any JSON document, valid or mangled (a field dropped, replaced by any JSON value, an
  unknown field added, the text truncated), is either a valid entity or a
  ``ValidationError`` naming the entity: never another exception, never NaN stored.
* A store key is either refused with ``InvalidKeyError`` by every store method, or it
  is stored exactly at ``<root>/<key>``, inside the root, and read back unchanged.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from adapter_base import (
    Annotation,
    AnnotationCollection,
    ArtifactManifest,
    Dataset,
    Filters,
    InvalidKeyError,
    Item,
    Model,
    ModelInfo,
    PredictionSet,
    ValidationError,
)
from adapter_base.entities.annotation import encode_mask
from adapter_base.entities.item import SUPPORTED_MIMETYPES
from adapter_base.entities.model import ArtifactFile
from adapter_base.storage import LocalStore, open_store
from adapter_base.storage.local import TMP_DIR
from adapter_base.storage.keys import validate_key

pytestmark = [pytest.mark.reliability]

PROPS = settings(max_examples=int(__import__("os").environ.get("RELIABILITY_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# --------------------------------------------------------------------------- strategies

text = st.text(min_size=1, max_size=12)
#: Names and ids become store keys and local paths: they follow the name rule on every read.
name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,11}", fullmatch=True)
finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
json_value = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=8)
json_object = st.dictionaries(st.text(max_size=6), json_value, max_size=3)
any_value = st.recursive(
    json_leaf | st.floats() | st.just(float("nan")) | st.just(float("inf")),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=6,
)
safe_part = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=10).filter(
    lambda p: p not in (".", "..")
)
rel_path = st.lists(safe_part, min_size=1, max_size=3).map("/".join).filter(lambda p: not (len(p) > 1 and p[1] == ":"))
sha = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


def model_info(model_id: str | None = None) -> st.SearchStrategy[ModelInfo]:
    return st.builds(
        ModelInfo,
        confidence=st.floats(0, 1),
        model_id=st.just(model_id) if model_id else st.none() | text,
        model_name=st.none() | text,
        model_version=st.none() | st.integers(0, 100),
    )


@st.composite
def coordinates(draw: Any, kind: str) -> Any:
    if kind == "classification":
        return None
    if kind == "box":
        left, top = draw(finite), draw(finite)
        return {"left": left, "top": top, "right": left + draw(finite), "bottom": top + draw(finite)}
    if kind == "polygon":
        return [[draw(finite), draw(finite)] for _ in range(draw(st.integers(3, 6)))]
    if kind == "point":
        return {"x": draw(finite), "y": draw(finite)}
    rows = draw(st.integers(1, 5))
    cells = draw(st.lists(st.booleans(), min_size=rows * 3, max_size=rows * 3))
    import numpy as np

    return encode_mask(np.array(cells, dtype=bool).reshape(rows, 3))


@st.composite
def annotations(draw: Any, model_id: str | None = None, prediction: bool | None = None) -> Annotation:
    kind = draw(st.sampled_from(["classification", "box", "polygon", "point", "binary_mask"]))
    is_pred = draw(st.booleans()) if prediction is None else prediction
    return Annotation(
        type=kind,
        label=draw(text),
        coordinates=draw(coordinates(kind)),
        attributes=draw(json_object),
        model=draw(model_info(model_id)) if is_pred else None,
        id=draw(text),
        metadata=draw(json_object),
    )


@st.composite
def prediction_sets(draw: Any) -> PredictionSet:
    model_id = draw(text)
    return PredictionSet(
        item_id=draw(text),
        model_id=model_id,
        model_name=draw(text),
        model_version=draw(st.integers(0, 50)),
        annotations=draw(st.lists(annotations(model_id, True), max_size=3)),
        run_id=draw(st.none() | text),
    )


@st.composite
def manifests(draw: Any, version: int) -> ArtifactManifest:
    paths = draw(st.lists(rel_path, max_size=4, unique=True))
    files = [ArtifactFile(path=p, size=draw(st.integers(0, 2**40)), sha256=draw(sha)) for p in paths]
    return ArtifactManifest(model_id=draw(name), version=version, files=files)


@st.composite
def models(draw: Any) -> Model:
    version = draw(st.integers(0, 20))
    subsets = draw(st.dictionaries(name, st.builds(Filters, subset=st.none() | text, path_prefix=st.none() | text).map(lambda f: f.to_dict()), max_size=2))
    return Model(
        name=draw(name),
        adapter=draw(st.none() | text),
        configuration=draw(json_object),
        labels=draw(st.lists(text, max_size=3)),
        subsets=subsets,
        status=draw(st.sampled_from(["created", "training", "trained", "failed"])),
        status_message=draw(st.none() | text),
        version=version,
        artifacts=draw(manifests(version)) if version else None,
        metrics=draw(json_object),
        aliases=draw(st.dictionaries(text, st.integers(1, 20), max_size=2)),
    )


items = st.builds(
    Item,
    dataset_id=name,
    path=rel_path,
    mimetype=st.sampled_from(SUPPORTED_MIMETYPES),
    size=st.integers(0, 2**40),
    id=name,
    subsets=st.lists(text, max_size=3),
    metadata=json_object,
)
datasets = st.builds(Dataset, name=name, id=name, labels=st.lists(text, max_size=3), metadata=json_object)
filters = st.builds(
    Filters, subset=st.none() | text, path_prefix=st.none() | text, metadata=json_object, item_ids=st.none() | st.lists(text, max_size=3)
)
collections = st.builds(AnnotationCollection, annotations=st.lists(annotations(), max_size=3), item_id=st.none() | text)

ENTITIES = {
    "Annotation": annotations(),
    "AnnotationCollection": collections,
    "PredictionSet": prediction_sets(),
    "Item": items,
    "Dataset": datasets,
    "Model": models(),
    "Filters": filters,
    "ArtifactManifest": st.integers(1, 9).flatmap(manifests),
}
any_entity = st.sampled_from(sorted(ENTITIES)).flatmap(lambda name: ENTITIES[name])


def strict_loads(text_: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name} in {text_[:200]}")

    return json.loads(text_, parse_constant=refuse)


def _dataset_eq(a: Any, b: Any) -> bool:
    return a.to_dict() == b.to_dict() if isinstance(a, Dataset) else a == b


# --------------------------------------------------------------------------- entities


@PROPS
@given(entity=any_entity)
def test_valid_entities_round_trip_through_strict_json(entity: Any) -> None:
    entity.validate()
    text_ = entity.to_json()
    strict_loads(text_)
    back = type(entity).from_json(text_)
    assert _dataset_eq(back, entity)
    assert back.to_json() == text_


@PROPS
@given(entity=any_entity, data=st.data())
def test_mangled_documents_are_valid_entities_or_validation_errors(entity: Any, data: st.DataObject) -> None:
    doc = entity.to_dict()
    action = data.draw(st.sampled_from(["drop", "replace", "add", "nested"]))
    if action == "drop" and doc:
        doc.pop(data.draw(st.sampled_from(sorted(doc))))
    elif action == "replace" and doc:
        doc[data.draw(st.sampled_from(sorted(doc)))] = data.draw(any_value)
    elif action == "add":
        doc[data.draw(st.text(max_size=8))] = data.draw(any_value)
    else:  # poke inside a nested list or object, where the checks are subtler
        nested = [k for k, v in doc.items() if isinstance(v, (list, dict)) and v]
        assume(nested)
        inner = doc[data.draw(st.sampled_from(sorted(nested)))]
        if isinstance(inner, list):
            inner[data.draw(st.integers(0, len(inner) - 1))] = data.draw(any_value)
        else:
            inner[data.draw(st.sampled_from(sorted(inner)))] = data.draw(any_value)
    cls = type(entity)
    try:
        parsed = cls.from_dict(doc)
    except ValidationError as exc:
        assert str(exc).split(".", 1)[0] in KINDS, str(exc)
        return
    strict_loads(parsed.to_json())  # a valid entity is always storable as strict JSON


ODD_VALUES = [None, True, 0, -1, 1.5, float("nan"), float("inf"), "", "x", [], [None], {}, {"": float("nan")}]


KINDS = {"Annotation", "AnnotationCollection", "ArtifactFile", "ArtifactManifest", "Dataset", "Filters", "Item", "Model", "ModelInfo", "PredictionSet"}


@pytest.mark.parametrize("name", sorted(ENTITIES))
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_every_field_takes_every_odd_value_or_names_itself(name: str, data: st.DataObject) -> None:
    """Each top-level field set to each odd value: a ValidationError naming the entity and
    field, or a valid entity that stores as strict JSON (systematic, where the fuzzing
    above is random)."""
    entity = data.draw(ENTITIES[name])
    cls = type(entity)
    for field_name in entity.to_dict():
        for value in ODD_VALUES:
            try:
                parsed = cls.from_dict(entity.to_dict() | {field_name: value})
            except ValidationError as exc:
                assert str(exc).split(".", 1)[0] in KINDS, (field_name, value, str(exc))
                continue
            strict_loads(parsed.to_json())


@PROPS
@given(entity=any_entity, cut=st.floats(0, 1, exclude_max=True), junk=st.binary(max_size=20))
def test_truncated_or_garbled_json_is_a_validation_error(entity: Any, cut: float, junk: bytes) -> None:
    text_ = entity.to_json()
    for bad in (text_[: int(len(text_) * cut)], junk, text_.encode()[: int(len(text_) * cut)] + junk):
        try:
            type(entity).from_json(bad)
        except ValidationError:
            continue
        assert bad in (text_, text_.encode()), "a mangled document parsed"


# --------------------------------------------------------------------------- store keys

any_key = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(safe_part, st.sampled_from(["", ".", "..", "\\", "a\\b", "\x00", "\x7f", "\n", "\ud800", "C:", " "])), min_size=1, max_size=5).map("/".join),
    st.builds(lambda lead, k: lead + k, st.sampled_from(["/", "../", "./", "//"]), st.text(max_size=20)),
)


def _every_method_refuses(store: Any, key: str, tmp: Path) -> None:
    src = tmp / "src.bin"
    src.write_bytes(b"x")
    calls = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.put_file(key, src),
        lambda: store.get_file(key, tmp / "dst.bin"),
        lambda: store.stat(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.copy("ok", key),
        lambda: store.put_json(key, {}),
    ]
    for call in calls:
        with pytest.raises(InvalidKeyError):
            call()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=any_key)
# Names of the local store's own temporaries, found by Hypothesis once: they run every time.
@example(key=".partial")
@example(key="x/.partial")
@example(key="optimizer.partial")
@example(key=".partial/x")
@example(key=TMP_DIR)
@example(key=TMP_DIR + "/x")
def test_a_key_is_refused_everywhere_or_stored_inside_the_root(tmp_path_factory: pytest.TempPathFactory, key: str) -> None:
    tmp = tmp_path_factory.mktemp("keys")
    root = tmp / "root"
    store = LocalStore(root)
    store.put_bytes("ok", b"ok")
    try:
        validate_key(key)
    except InvalidKeyError as exc:
        assert repr(key) in str(exc), f"the error does not name the key: {exc}"
        _every_method_refuses(store, key, tmp)
        assert sorted(p.name for p in tmp.iterdir()) == ["root", "src.bin"]  # nothing written anywhere
        assert [o.key for o in store.list()] == ["ok"]
        return
    store.put_bytes(key, b"payload")
    target = (root / key).resolve()
    assert target.is_file() and root.resolve() in target.parents, f"{key!r} was stored at {target}"
    assert store.get_bytes(key) == b"payload"
    assert [o.key for o in store.list()] == sorted(["ok", key])
    store.delete(key)
    assert not store.exists(key) and [o.key for o in store.list()] == ["ok"]


@pytest.mark.s3
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(safe_part, min_size=1, max_size=3))
def test_valid_keys_round_trip_on_s3(s3_env: dict[str, str], s3_bucket: str, parts: list[str]) -> None:
    key = "/".join(parts)
    validate_key(key)
    store = open_store(f"s3://{s3_bucket}/keys-{uuid.uuid4().hex[:8]}")
    try:
        store.put_bytes(key, b"payload")
        assert store.get_bytes(key) == b"payload"
        assert [o.key for o in store.list()] == [key]
    finally:
        store.delete(key)
        store.close()


def test_keys_that_cannot_be_encoded_or_stored_are_refused() -> None:
    for key in ("a/\ud800", "\udcff", "a/" + "x" * 256, "k/" * 600 + "end"):
        with pytest.raises(InvalidKeyError):
            validate_key(key)
    longest = "a/" + "x" * 255
    assert validate_key(longest) == longest
