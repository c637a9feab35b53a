"""What an import will write, computed before anything is written: items, labels, skipped files, a summary."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..entities import AnnotationCollection
from ..entities.item import SUPPORTED_MIMETYPES
from ..registry import guess_mimetype, item_path_problem
from .subsets import KNOWN_SUBSETS, stratified_split

NO_LABEL = "(no label)"
NO_SUBSET = "(none)"
#: Entries named one by one in a summary (the rest are counted).
SHOW_SKIPPED = 20
#: A dataset id for checking the keys of a plan's paths before the dataset is known (every id is 32 hex digits).
ANY_DATASET_ID = "0" * 32


@dataclass
class PlannedItem:
    """One file to import: its path in the dataset, the local file, subsets, ground truth and metadata
    (``broken``: why the image could not be read while planning, when it could not)."""

    path: str
    file: Path
    subsets: list[str] = field(default_factory=list)
    annotations: AnnotationCollection | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    broken: str | None = None

    @property
    def labels(self) -> list[str]:
        """The distinct ground-truth labels of the item, sorted."""
        return sorted({a.label for a in self.annotations or ()})

    @property
    def stratum(self) -> str | None:
        """The label a split stratifies the item by: its most frequent one (None without ground truth)."""
        counts = Counter(a.label for a in self.annotations or ())
        return min(counts, key=lambda label: (-counts[label], label)) if counts else None


@dataclass
class ImportPlan:
    """Everything one import would write, and what it leaves out (``skipped``: path and why; ``ignored``: counts)."""

    source: str
    format: str
    items: list[PlannedItem]
    labels: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    split: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        # A name no store key can hold (too long once it is a key, a newline, a backslash) is skipped like
        # other odd entries, before anything is written; the store's own limits are checked again by apply_plan.
        storable = []
        for it in self.items:
            problem = item_path_problem(ANY_DATASET_ID, it.path)
            if problem is None:
                storable.append(it)
            else:
                self.skipped.append((it.path, problem))
        self.items = storable

    def without(self, paths: Iterable[str]) -> ImportPlan:
        """The same plan less the items at ``paths`` (for a summary of what an import wrote)."""
        gone = set(paths)
        return replace(self, items=[it for it in self.items if it.path not in gone], skipped=list(self.skipped))

    def split_unassigned(self, fractions: tuple[float, float, float] | None, seed: int) -> None:
        """Put the items that are in no subset into train / validation / test by ``fractions``, per label."""
        if fractions is None:
            return
        loose = [it for it in self.items if not it.subsets]
        assigned = stratified_split([it.path for it in loose], [it.stratum for it in loose], fractions, seed)
        for it in loose:
            it.subsets = [assigned[it.path]]
        self.split = fractions

    def table(self) -> dict[str, Counter[str]]:
        """Items per label (rows) and subset (columns); an item with several labels counts in each."""
        rows: dict[str, Counter[str]] = defaultdict(Counter)
        for it in self.items:
            for label in it.labels or [NO_LABEL]:
                for subset in it.subsets or [NO_SUBSET]:
                    rows[label][subset] += 1
        return rows

    def subset_counts(self) -> Counter[str]:
        """Items per subset (``(none)`` for items in no subset)."""
        return Counter(s for it in self.items for s in it.subsets or [NO_SUBSET])

    def warnings(self) -> list[str]:
        """What looks off: items in no subset, no test subset, a label in only one subset, files skipped, annotations ignored."""
        out: list[str] = []
        counts = self.subset_counts()
        loose = counts.get(NO_SUBSET, 0)
        if self.items and loose == len(self.items):
            out.append(
                f"no subsets: none of the {len(self.items)} items is in train, validation or test (no train/, val/ or "
                "test/ folders or column); pass --split 0.8,0.1,0.1 to split them by label"
            )
        elif loose:
            example = next(it.path for it in self.items if not it.subsets)
            out.append(f"{loose} item(s) are in no subset (e.g. {example!r}); pass --split 0.8,0.1,0.1 to split them by label")
        used = [s for s in counts if s != NO_SUBSET]
        if used and "test" not in used:
            other = "validation" if "validation" in used else sorted(used)[0]
            out.append(f"no test subset: `evaluate` needs --subset {other} or a test/ folder (or a test fraction in --split)")
        if len(used) > 1:
            for label, row in sorted(self.table().items()):
                only = [s for s in row if s != NO_SUBSET]
                if label != NO_LABEL and len(only) == 1:
                    out.append(f"label {label!r} is only in {only[0]} ({row[only[0]]} item(s))")
        if self.skipped:
            out.append(f"{len(self.skipped)} file(s) skipped: {_reasons(self.skipped)}")
        for what, n in sorted(self.ignored.items()):
            out.append(f"{n} {what} ignored")
        return out

    def summary(self) -> str:
        """A table of items per label and subset, then the warnings (one line each)."""
        table = self.table()
        counts = self.subset_counts()
        columns = [s for s in KNOWN_SUBSETS] + sorted(s for s in counts if s not in KNOWN_SUBSETS and s != NO_SUBSET)
        if counts.get(NO_SUBSET):
            columns.append(NO_SUBSET)
        rows = sorted(table, key=lambda label: (label == NO_LABEL, label))
        width = max([len("label")] + [len(r) for r in rows])
        lines = [
            f"{len(self.items)} item(s) from {self.source} ({self.format}), {len(self.labels)} label(s)"
            + (f", split {','.join(f'{f:g}' for f in self.split)}" if self.split else "")
            + ":",
            "  " + "label".ljust(width) + "".join(f"  {c:>10}" for c in columns),
        ]
        for label in rows:
            lines.append("  " + label.ljust(width) + "".join(f"  {table[label].get(c, 0):>10}" for c in columns))
        lines.append("  " + "items".ljust(width) + "".join(f"  {counts.get(c, 0):>10}" for c in columns))
        lines.extend(f"warning: {w}" for w in self.warnings())
        return "\n".join(lines)


def _reasons(skipped: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{why} {n}" for why, n in Counter(why for _, why in skipped).most_common())


def skipped_lines(skipped: Sequence[tuple[str, str]]) -> list[str]:
    """The skipped entries, one line each (the first ``SHOW_SKIPPED``, then a count of the rest)."""
    lines = [f"  {shown_path(rel)}: {why}" for rel, why in skipped[:SHOW_SKIPPED]]
    if len(skipped) > SHOW_SKIPPED:
        lines.append(f"  ... and {len(skipped) - SHOW_SKIPPED} more")
    return lines


def shown_path(path: str) -> str:
    """``path`` as one printable line: quoted and escaped when it holds a newline, a control character or bytes that are not UTF-8."""
    return path if path.isprintable() else ascii(path)


def media_kind(path: str) -> str | None:
    """``image`` or ``text`` for a file name the registry stores as such, None for anything else."""
    mimetype = guess_mimetype(path)
    if mimetype not in SUPPORTED_MIMETYPES or mimetype == "application/octet-stream":
        return None
    return "image" if mimetype.startswith("image/") else "text"


def keep_media(paths: Iterable[str], kind: str | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """The paths of one media kind (``kind``, else images when there are any, else text) and the rest, with why."""
    paths = list(paths)
    kinds = {p: media_kind(p) for p in paths}
    if kind is None:
        kind = "image" if "image" in kinds.values() else "text"
    kept = [p for p in paths if kinds[p] == kind]
    skipped = [(p, f"not {'an image' if kind == 'image' else 'text'} ({guess_mimetype(p)})") for p in paths if kinds[p] != kind]
    return kept, skipped
