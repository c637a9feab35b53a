"""``python -m bench.regression``: compare a bench run with the committed results and name every row more than 15% worse.

    python -m bench.regression                                # bench/results/latest.json vs git HEAD's copy
    python -m bench.regression .bench/run.json --baseline old.json --threshold 0.10 --all

A row is one figure of one measure in one case, found by its key wherever it sits in the
results (so every section's rows are compared, whatever its layout): throughputs
(``items_per_s``, ``mib_per_s``: higher is better), peak memory (``peak_rss_mib``), CPU per
item (``cpu_ms_per_item``...) and step seconds (``kfp_local_s``...: lower is better). A
figure is a number or a ``spread`` (median with min-max); its median is compared. A row is
*worse* when its median lost more than the threshold (default 15%) of the baseline's and
more than the noise floor of its unit; rows whose min-max ranges overlap are marked
``overlap`` (within the repeats' spread), but the threshold decides. Rows only on one side,
or measured at other sizes or on another device (``n``, ``bytes``, ``device``... of the
enclosing section), or against a model cost calibrated more than 10% apart (``work``,
``device_ms_per_item``: each run sizes its model from its own reading and decoding, so a
slower read makes every rate of that case lower by design), are listed and not compared. Exit status: 0, 1 when a row is worse, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .common import REPO

THRESHOLD = 0.15
RESULTS = "bench/results/latest.json"

#: figure key -> (what it is, higher is better, the smallest change that counts: below it a relative
#: change is timer or allocator noise). Ratios and bounds are left out: they derive from these rows.
METRICS: dict[str, tuple[str, bool, float]] = {
    "items_per_s": ("items/s", True, 0.0),
    "mib_per_s": ("MiB/s", True, 0.0),
    "peak_rss_mib": ("peak RSS MiB", False, 1.0),
    "cpu_ms_per_item": ("CPU ms/item", False, 0.1),
    "server_and_proxy_cpu_ms_per_item": ("server+proxy CPU ms/item", False, 0.1),
    "kfp_local_s": ("s under kfp.local", False, 0.05),
    "in_process_s": ("s in-process", False, 0.05),
    "kfp_local_total_s": ("s under kfp.local, whole DAG", False, 0.05),
    "in_process_total_s": ("s in-process, whole DAG", False, 0.05),
}
#: Keys of a section that set the size of what its rows measure: rows are compared only at equal sizes.
SCALE_KEYS = ("n", "items", "small", "large", "files", "bytes", "batch_size", "image_size", "input_size", "dataset_items", "epochs", "latency_ms", "device")
#: Keys of a section that set the model cost its rows run against (calibrated by each run): rows are
#: compared only where each is within ``COST_TOLERANCE`` of the baseline's.
COST_KEYS = ("work", "device_ms_per_item")
COST_TOLERANCE = 0.10
#: Subtrees that hold raw repeats, settings or verdicts, not rows.
SKIP = frozenset({"machine", "config", "targets", "samples", "runs", "seconds", "calibration", "configuration", "requests", "variants", "gpu"})
#: Path parts that only group rows; left out of a row's name.
GROUPS = frozenset({"settings", "sizes", "per_step"})


@dataclass(frozen=True)
class Figure:
    """One row of a results file: its median and, where recorded, the min-max of its repeats."""

    row: str
    unit: str
    higher_is_better: bool
    noise_floor: float
    median: float
    low: float | None = None
    high: float | None = None
    scale: tuple[tuple[str, Any], ...] = ()
    cost: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Change:
    """A row on both sides: the relative change of its median, signed so that positive is worse."""

    base: Figure
    new: Figure

    @property
    def loss(self) -> float:
        b, n = self.base.median, self.new.median
        if b == 0:
            return 0.0
        return (b - n) / b if self.base.higher_is_better else (n - b) / b

    def worse(self, threshold: float) -> bool:
        return self.loss > threshold and abs(self.new.median - self.base.median) > self.base.noise_floor

    @property
    def overlap(self) -> bool:
        """Whether the two runs' min-max ranges overlap (the change is within what the repeats spread over)."""
        b, n = self.base, self.new
        if None in (b.low, b.high, n.low, n.high):
            return False
        return n.low <= b.high and b.low <= n.high  # type: ignore[operator]


@dataclass
class Comparison:
    """Every row of two runs: the ones compared, the ones on one side only, the ones at other sizes or model costs."""

    changes: list[Change]
    only_baseline: list[str]
    only_current: list[str]
    other_sizes: list[tuple[str, str]]
    threshold: float

    @property
    def worse(self) -> list[Change]:
        return [c for c in self.changes if c.worse(self.threshold)]


def _leaf(value: Any) -> tuple[float, float | None, float | None] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value), None, None
    if isinstance(value, dict) and isinstance(value.get("median"), (int, float)):
        return float(value["median"]), value.get("min"), value.get("max")
    return None


def figures(results: dict[str, Any]) -> dict[str, Figure]:
    """Every row of a bench results file (see ``METRICS``), keyed by row name and unit."""
    out: dict[str, Figure] = {}

    def walk(node: dict[str, Any], path: tuple[str, ...], scale: tuple[tuple[str, Any], ...], cost: tuple[tuple[str, float], ...]) -> Iterator[Figure]:
        scale = scale + tuple((f"{'/'.join(path)}:{k}", node[k]) for k in SCALE_KEYS if k in node and not isinstance(node[k], dict))
        cost = cost + tuple((k, float(node[k])) for k in COST_KEYS if isinstance(node.get(k), (int, float)) and not isinstance(node[k], bool))
        for key, value in node.items():
            if key in SKIP:
                continue
            if key in METRICS:
                unit, higher, floor = METRICS[key]
                leaf = _leaf(value)
                named = [((), leaf)] if leaf else [((k,), _leaf(v)) for k, v in value.items()] if isinstance(value, dict) else []
                for extra, got in named:
                    if got is not None:
                        parts = [p for p in (*path, *extra) if p not in GROUPS]
                        yield Figure(" / ".join(parts), unit, higher, floor, got[0], got[1], got[2], scale, cost)
            elif isinstance(value, dict):
                yield from walk(value, (*path, key), scale, cost)

    for f in walk(results, (), (), ()):
        out[f"{f.row} [{f.unit}]"] = f
    return out


def compare(baseline: dict[str, Any], current: dict[str, Any], threshold: float = THRESHOLD) -> Comparison:
    """Row by row: each row's change from ``baseline`` to ``current``, rows on one side only, rows at other sizes or model costs."""
    base, new = figures(baseline), figures(current)
    changes, other = [], []
    for key in [k for k in base if k in new]:
        b, n = base[key], new[key]
        if b.scale != n.scale:
            diff = sorted(set(b.scale) ^ set(n.scale))
            what = ", ".join(sorted({name.rsplit(":", 1)[1] for name, _ in diff}))
            other.append((key, f"{what} differ"))
            continue
        costs = _cost_changes(b.cost, n.cost)
        if costs:
            other.append((key, f"model cost differs: {costs}"))
            continue
        changes.append(Change(b, n))
    return Comparison(changes, [k for k in base if k not in new], [k for k in new if k not in base], other, threshold)


def _cost_changes(base: tuple[tuple[str, float], ...], new: tuple[tuple[str, float], ...]) -> str:
    """The model costs both rows name that differ by more than ``COST_TOLERANCE`` (``"work 300 vs 452"``), or ``""``."""
    b, n = dict(base), dict(new)
    far = [k for k in COST_KEYS if k in b and k in n and abs(n[k] - b[k]) > COST_TOLERANCE * max(abs(b[k]), abs(n[k]))]
    return ", ".join(f"{k} {b[k]:g} vs {n[k]:g}" for k in far)


def _section(key: str) -> str:
    return key.split(" / ")[0].split(" [")[0]


def _fmt(f: Figure) -> str:
    v = f"{f.median:,.4g}"
    return v if f.low is None or f.high is None or f.low == f.high else f"{v} ({f.low:,.4g}-{f.high:,.4g})"


def render(c: Comparison, *, every_row: bool = False) -> str:
    """The table of worse rows (every compared row with ``every_row``), and the rows not compared."""
    rows = c.changes if every_row else c.worse
    lines = [
        f"{len(c.changes)} rows compared, {len(c.worse)} more than {c.threshold:.0%} worse"
        f"; {len(c.only_baseline)} only in the baseline, {len(c.only_current)} only in this run, {len(c.other_sizes)} at other sizes or model costs"
    ]
    if rows:
        width, uw = max(len(x.base.row) for x in rows), max(len(x.base.unit) for x in rows)
        lines += ["", f"{'row':{width}}  {'figure':{uw}}  {'baseline':>24}  {'this run':>24}  {'change':>7}  verdict"]
        for x in sorted(rows, key=lambda x: -x.loss):
            change = (x.new.median - x.base.median) / x.base.median if x.base.median else 0.0
            verdict = ("WORSE" if x.worse(c.threshold) else "ok") + (" (spreads overlap)" if x.overlap else "")
            lines.append(f"{x.base.row:{width}}  {x.base.unit:{uw}}  {_fmt(x.base):>24}  {_fmt(x.new):>24}  {change:>+7.1%}  {verdict}")
    compared = {_section(x.base.row) for x in c.changes} | {_section(k) for k, _ in c.other_sizes}
    for title, keys, other in (
        ("only in the baseline (not compared)", c.only_baseline, c.only_current),
        ("only in this run (not compared)", c.only_current, c.only_baseline),
    ):
        if keys:
            # a section the other run lacks altogether is one line; otherwise every row is named
            partial = compared | {_section(k) for k in other}
            whole: dict[str, int] = {}
            for k in keys:
                if _section(k) not in partial:
                    whole[_section(k)] = whole.get(_section(k), 0) + 1
            lines += ["", f"{title}:"] + [f"  {k}" for k in keys if _section(k) in partial]
            lines += [f"  {sec}: the whole section ({count} rows)" for sec, count in whole.items()]
    if c.other_sizes:
        groups: dict[tuple[str, str], int] = {}
        for key, why in c.other_sizes:
            groups[_section(key), why] = groups.get((_section(key), why), 0) + 1
        lines += ["", "measured at other sizes or model costs (not compared):"] + [f"  {s}: {k} row(s), {why}" for (s, why), k in groups.items()]
    return "\n".join(lines)


def committed(ref: str = "HEAD", path: str = RESULTS) -> dict[str, Any]:
    """The results file as committed at ``ref`` (what a fresh run has not overwritten)."""
    try:
        text = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise ValueError(f"cannot read {path} at git {ref}: {detail.strip()}") from e
    return json.loads(text)


def _load(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read bench results {path}: {e}") from e


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.regression", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("current", nargs="?", default=str(REPO / RESULTS), help=f"results of the run to check (default {RESULTS})")
    ap.add_argument("--baseline", default=None, help=f"results to compare with (default: {RESULTS} as committed at --ref)")
    ap.add_argument("--ref", default="HEAD", help="git revision of the committed baseline (default HEAD)")
    ap.add_argument("--threshold", type=float, default=THRESHOLD, help=f"worse = the median lost more than this fraction (default {THRESHOLD})")
    ap.add_argument("--all", dest="every_row", action="store_true", help="print every compared row, not only the worse ones")
    a = ap.parse_args(argv)
    if not 0 < a.threshold < 1:
        ap.error(f"--threshold must be a fraction between 0 and 1, not {a.threshold}")
    try:
        baseline = _load(a.baseline) if a.baseline else committed(a.ref)
        current = _load(a.current)
    except ValueError as e:
        print(f"bench regression check: {e}", file=sys.stderr)
        return 2
    result = compare(baseline, current, a.threshold)
    print(f"bench regression check: {a.current} vs {a.baseline or f'{RESULTS} at {a.ref}'}")
    for label, r in (("baseline", baseline), ("this run", current)):
        print(f"  {label}: {r.get('started_at', '?')}, load average {r.get('machine', {}).get('loadavg_at_start')} at the start, {r.get('loadavg_at_end')} at the end")
    print(render(result, every_row=a.every_row))
    return 1 if result.worse else 0


if __name__ == "__main__":
    sys.exit(main())
