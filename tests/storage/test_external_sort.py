"""``storage.external_sort``: key order with bounded memory, and the listings built on it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter_base.storage import external_sort
from adapter_base.storage.external_sort import sorted_lines

LINES = st.lists(st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=8), max_size=60)


@settings(max_examples=200, deadline=None)
@given(lines=LINES, run=st.integers(1, 9))
def test_sorted_lines_is_sorted_whatever_the_run_size(lines, run):
    assert list(sorted_lines(lines, run=run)) == sorted(lines)


def test_a_line_with_a_newline_is_refused():
    with pytest.raises(ValueError, match="newline"):
        list(sorted_lines(["a", "b\nc"]))


def test_a_listing_larger_than_a_run_is_in_key_order(store, monkeypatch):
    """Local directories and SeaweedFS levels are sorted by us, in runs here; S3 lists in key order itself."""
    monkeypatch.setattr(external_sort, "RUN_LINES", 5)
    keys = [f"d/{name}" for name in ("a-b", "a.b", "a0", "b", "x", "y", "z", "\u00e9", "0", "A", "_")]
    keys += ["d/a/x", "d/a/y", "d/ab/1", "e"]
    for key in keys:
        store.put_bytes(key, b"1")
    assert [o.key for o in store.list("d/")] == sorted(k for k in keys if k.startswith("d/"))
    assert [o.key for o in store.list("")] == sorted(keys)
