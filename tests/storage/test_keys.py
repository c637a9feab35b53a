"""Property tests: a key that validates can never escape its root."""

from __future__ import annotations

import posixpath
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter_base.errors import InvalidKeyError
from adapter_base.storage.keys import join_key, validate_key, validate_prefix

# Parts chosen to hit every trap: traversal, empties, dots, separators, controls, unicode.
TRICKY_PARTS = ["..", ".", "", "...", "..a", "a..", "a", "b c", "~", "\\", "a\\..", "\x00", "\n", "é", "C:", "%2e%2e", " "]

any_text = st.text(
    alphabet=st.one_of(st.sampled_from("./\\~:a \x00\x7f"), st.characters()),
    max_size=40,
)
tricky_keys = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    st.sampled_from(["", "/", "//", "./", "../"]),
    st.lists(st.one_of(st.sampled_from(TRICKY_PARTS), any_text), min_size=1, max_size=6),
)
safe_part = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=20,
).filter(lambda p: p not in (".", ".."))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keyroot").resolve()


def _inside(root: Path, key: str) -> bool:
    resolved = (root / key).resolve()
    return resolved != root and root in resolved.parents


@settings(max_examples=400, deadline=None)
@given(key=st.one_of(any_text, tricky_keys))
def test_valid_keys_never_escape(root: Path, key: str) -> None:
    try:
        validate_key(key)
    except InvalidKeyError:
        return
    parts = key.split("/")
    assert ".." not in parts and "." not in parts and "" not in parts
    assert not key.startswith("/") and "\\" not in key
    assert posixpath.normpath(key) == key
    assert _inside(root, key)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(safe_part, min_size=1, max_size=8))
def test_keys_from_safe_parts_validate(root: Path, parts: list[str]) -> None:
    key = "/".join(parts)
    assert validate_key(key) == key
    assert join_key(*parts) == key
    assert validate_prefix(key + "/") == key + "/"
    assert _inside(root, key)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(safe_part, min_size=1, max_size=5), bad=st.sampled_from(["..", ".", ""]), at=st.integers(0, 5))
def test_one_bad_part_spoils_a_key(parts: list[str], bad: str, at: int) -> None:
    parts.insert(min(at, len(parts)), bad)
    with pytest.raises(InvalidKeyError):
        validate_key("/".join(parts))


@given(key=st.one_of(st.none(), st.integers(), st.binary()))
def test_non_strings_rejected(key: object) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(key)


@settings(max_examples=400, deadline=None)
@given(prefix=safe_part, bad=st.sampled_from([chr(c) for c in (*range(32), 127)] + ["\\"]), suffix=safe_part)
def test_control_characters_and_backslashes_are_refused_anywhere(prefix: str, bad: str, suffix: str) -> None:
    with pytest.raises(InvalidKeyError, match="backslash or control character"):
        validate_key(f"{prefix}{bad}{suffix}")
    validate_key(f"{prefix}/{suffix}")  # the same parts without it are a key
