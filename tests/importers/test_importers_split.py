"""``--split``: per label, each subset gets its share to within one item, and the same seed gives the same split."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter_base.errors import ValidationError
from adapter_base.importers import KNOWN_SUBSETS, parse_split
from adapter_base.importers.subsets import stratified_split, subset_alias

fractions = st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(0, 10)).filter(lambda t: sum(t) > 0).map(
    lambda t: tuple(v / sum(t) for v in t)
)


@settings(max_examples=200, deadline=None)
@given(per_label=st.dictionaries(st.sampled_from(["a", "b", "c", None]), st.integers(1, 40), min_size=1), fr=fractions, seed=st.integers(0, 2**32 - 1))
def test_each_label_is_split_by_the_fractions(per_label, fr, seed):
    keys = [f"{label}/{i}" for label, n in per_label.items() for i in range(n)]
    strata = [k.split("/")[0] for k in keys]
    out = stratified_split(keys, strata, fr, seed)
    assert set(out) == set(keys)
    for label, n in per_label.items():
        got = Counter(out[k] for k in keys if k.split("/")[0] == str(label))
        for subset, f in zip(KNOWN_SUBSETS, fr):
            assert abs(got[subset] - n * f) < 1 + 1e-9, (label, subset, got, n, f)
    shuffled = list(zip(keys, strata))
    random.Random(seed).shuffle(shuffled)
    assert stratified_split([k for k, _ in shuffled], [s for _, s in shuffled], fr, seed) == out


def test_parse_split_and_aliases():
    assert parse_split("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    assert parse_split("0.9, 0.1") == (0.9, 0.1, 0.0)
    for bad in ("0.8", "0.7,0.1,0.1", "x,y", "0.5,0.5,0,0", "1.5,-0.5,0"):
        with pytest.raises(ValidationError, match="--split"):
            parse_split(bad)
    assert [subset_alias(n) for n in ("train", "VAL", "valid", "Validation", "test", "cats")] == ["train", "validation", "validation", "validation", "test", None]
