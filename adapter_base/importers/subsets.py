"""Subset names (aliases such as ``val`` -> ``validation``) and the seeded, stratified ``--split``."""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Sequence, TypeVar

import numpy as np

from ..errors import ValidationError

KNOWN_SUBSETS: tuple[str, ...] = ("train", "validation", "test")
"""The subsets models train, validate and are tested on, in that order."""

SUBSET_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "test",
    "testing": "test",
}
"""Folder or column names (compared lower-case) and the subset each one means."""

T = TypeVar("T")


def subset_alias(name: str) -> str | None:
    """The subset a folder name stands for (``val`` -> ``validation``), or None when it names none."""
    return SUBSET_ALIASES.get(name.lower())


def parse_split(text: str) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` (train, validation, test fractions; two values leave test empty) as three floats."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValidationError("import", "--split", f"expected fractions like 0.8,0.1,0.1, got {text!r}") from None
    if len(values) == 2:
        values.append(0.0)
    if len(values) != 3 or any(not (0.0 <= v <= 1.0) for v in values):
        raise ValidationError("import", "--split", f"expected two or three fractions in [0, 1] (train,validation[,test]), got {text!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValidationError("import", "--split", f"the fractions must add up to 1, got {text!r} (sum {sum(values):g})")
    return values[0], values[1], values[2]


def _shares(n: int, fractions: Sequence[float]) -> list[int]:
    """``n`` split by ``fractions`` in whole numbers (largest remainders get the leftovers, earlier first)."""
    exact = [n * f for f in fractions]
    counts = [int(np.floor(x)) for x in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def stratified_split(keys: Sequence[T], strata: Sequence[Hashable], fractions: Sequence[float], seed: int) -> dict[T, str]:
    """Assign each key a subset of ``KNOWN_SUBSETS`` so that every stratum (label) is split by ``fractions``.

    Deterministic: the same keys, strata, fractions and seed give the same assignment,
    whatever order the keys come in.
    """
    groups: dict[Hashable, list[T]] = defaultdict(list)
    for key, stratum in zip(keys, strata):
        groups[stratum].append(key)
    out: dict[T, str] = {}
    for stratum in sorted(groups, key=repr):
        members = sorted(groups[stratum], key=repr)
        rng = np.random.default_rng([seed, len(members)] + [ord(c) for c in repr(stratum)])
        order = [members[i] for i in rng.permutation(len(members))]
        start = 0
        for subset, count in zip(KNOWN_SUBSETS, _shares(len(order), fractions)):
            for key in order[start : start + count]:
                out[key] = subset
            start += count
    return out
