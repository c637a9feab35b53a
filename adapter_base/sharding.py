"""Sharded prediction: split a dataset listing into shard manifests, merge the shard reports.

A batched-prediction pipeline lists the matching item ids once, writes one manifest
per shard to the store, runs one prediction step per shard, then merges the
per-shard ``PredictionReport`` dicts into one summary. Only small things (shard
indices, store keys) travel between steps; item lists live in the store, under
``runs/<run_id>/shards/`` (the keys are spelled out in ``registry.layout``: ``shard_index``,
``shard_manifest``, ``shard_report``, ``shard_attempts``, ``prediction_summary``).

The functions here are pure (``split_evenly``, ``merge_reports``, ``summary_markdown``)
or take the store / registry explicitly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from .concurrency import ordered_map
from .entities import Item
from .entities._base import utc_now
from .errors import NotFoundError, StoreError, ValidationError
from .registry import layout
from .registry.identity import check_identity, mismatch

if TYPE_CHECKING:
    from .registry import Registry
    from .storage import ObjectStore

log = logging.getLogger(__name__)

MAX_SHARDS = 10_000


def start_shard_attempt(store: "ObjectStore", run_id: str, shard: int) -> int:
    """Count one more attempt at ``shard`` of ``run_id``; returns its number (1: the first).

    Written before the shard predicts anything, so any later attempt of the same run (a
    retried pod, a retried run) sees a number above 1, however the previous one ended.
    """
    key = layout.shard_attempts(run_id, shard)
    try:
        previous = int(store.get_json(key).get("attempts", 1))
    except NotFoundError:
        previous = 0
    except (StoreError, ValueError, TypeError, AttributeError):  # unreadable counter: an attempt did start
        previous = 1
    attempt = previous + 1
    store.put_json(key, {"run_id": run_id, "shard": int(shard), "attempts": attempt, "started_at": utc_now()})
    return attempt


def shard_run_id(run_id: str, shard: int) -> str:
    """The prediction run id of one shard (stamped on its prediction sets)."""
    return f"{run_id}-shard-{int(shard):04d}"


def shard_sizes(total: int, num_shards: int) -> list[int]:
    """How many of ``total`` ids each shard gets: ``min(num_shards, total)`` shards (at least one), sizes differing by at most one."""
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or not 1 <= num_shards <= MAX_SHARDS:
        raise ValidationError("shards", "num_shards", f"must be an integer from 1 to {MAX_SHARDS}, got {num_shards!r}")
    n = max(1, min(num_shards, total))
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def split_evenly(ids: Sequence[str], num_shards: int) -> list[list[str]]:
    """Split ``ids`` into contiguous shards whose sizes differ by at most one, order kept.

    There are ``min(num_shards, len(ids))`` shards, but always at least one (empty
    when ``ids`` is), so a fan-out over the result never has zero iterations.
    """
    out: list[list[str]] = []
    start = 0
    for size in shard_sizes(len(ids), num_shards):
        out.append(list(ids[start : start + size]))
        start += size
    return out


def write_shards(
    store: "ObjectStore",
    run_id: str,
    dataset_id: str,
    listing: Iterable[str | tuple[str, Item | BaseException]],
    num_shards: int,
    filters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write one manifest per shard, with copies of its item records, and the shard index; returns the index.

    ``listing`` yields item ids, or ``(item_id, record or error)`` pairs
    (``Registry.iter_item_results``, which lists lazily): it is spooled to temp files once to count it, then each
    manifest (the ids) and its records file (``layout.shard_records``: one JSON line per
    id, ``{}`` where the record was not read) are written line by line and uploaded
    streaming, so no list of a million ids is ever held. A shard reads its records in one
    request instead of one per item. The index is small whatever the dataset size: shard
    numbers, keys and counts.
    """
    layout.check_name("run", run_id)
    shard_sizes(0, num_shards)  # a bad count fails before the listing is read
    with tempfile.TemporaryDirectory(prefix="shards-") as tmp:
        ids_spool, records_spool = Path(tmp) / "ids", Path(tmp) / "records"
        total = 0
        with open(ids_spool, "w", encoding="utf-8") as ids_out, open(records_spool, "w", encoding="utf-8") as records_out:
            for entry in listing:
                item_id, record = (entry, None) if isinstance(entry, str) else entry
                if not isinstance(item_id, str) or "\n" in item_id:
                    raise ValidationError("shards", "item_ids", f"an item id must be a one-line string, got {item_id!r}")
                ids_out.write(item_id + "\n")
                records_out.write((record.to_json() if isinstance(record, Item) else "{}") + "\n")
                total += 1
        sizes = shard_sizes(total, num_shards)
        shards = []
        with open(ids_spool, encoding="utf-8") as lines, open(records_spool, encoding="utf-8") as records:
            for i, size in enumerate(sizes):
                key = layout.shard_manifest(run_id, i)
                head = {"run_id": run_id, "dataset_id": dataset_id, "shard": i, "num_shards": len(sizes)}
                manifest, copies = Path(tmp) / f"{i}.json", Path(tmp) / f"{i}.jsonl"
                with open(manifest, "w", encoding="utf-8") as out, open(copies, "w", encoding="utf-8") as copies_out:
                    out.write(json.dumps(head)[:-1] + ', "item_ids": [')
                    for n in range(size):
                        out.write((", " if n else "") + json.dumps(next(lines)[:-1]))
                        copies_out.write(next(records))
                    out.write("]}")
                store.put_file(layout.shard_records(run_id, i), copies, "application/x-ndjson")  # before the manifest that names its shard
                store.put_file(key, manifest, "application/json")
                manifest.unlink()
                copies.unlink()
                shards.append({"shard": i, "key": key, "count": size})
    index = {
        "run_id": run_id,
        "dataset_id": dataset_id,
        "filters": dict(filters or {}),
        "requested_shards": num_shards,
        "num_shards": len(shards),
        "total": total,
        "shards": shards,
    }
    store.put_json(layout.shard_index(run_id), index)
    return index


def read_shard(store: "ObjectStore", index: Mapping[str, Any], shard: int) -> list[str]:
    """The item ids of shard ``shard`` of a shard index (a manifest of another run, dataset or shard is a ``ValidationError``)."""
    entries = {int(s["shard"]): s for s in index.get("shards", [])}
    if int(shard) not in entries:
        raise ValidationError("shards", "shard", f"run {index.get('run_id')!r} has no shard {shard} (has {len(entries)})")
    key = entries[int(shard)]["key"]
    manifest = store.get_json(key)
    if not isinstance(manifest, dict):
        raise ValidationError("shards", "item_ids", f"manifest {key!r} is not a JSON object")
    check_identity(manifest, key, run_id=index.get("run_id"), dataset_id=index.get("dataset_id"), shard=int(shard))
    ids = manifest.get("item_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValidationError("shards", "item_ids", f"manifest {entries[int(shard)]['key']!r} has no list of item ids")
    return ids


def iter_shard_items(
    registry: "Registry", dataset_id: str, item_ids: Iterable[str], records_key: str | None = None
) -> Iterator[tuple[str, Item | BaseException]]:
    """Yield ``(item_id, Item or the error reading its record)`` lazily, a bounded window ahead.

    The shape ``adapter_base.prediction.run_predictions`` takes, so an unreadable
    record becomes one failed item (stage ``list``) and the rest go on. With
    ``records_key`` (the split's copies, ``write_shards``) the records come from that one
    file, downloaded once; an id whose copy is missing, unreadable or not that item's is
    read from its own record instead, as is every id when the file is gone.
    """

    def load(entry: tuple[str, str]) -> Item:
        item_id, copy = entry
        return _copy_of(copy, item_id, dataset_id, records_key or "") or registry.get_item(dataset_id, item_id)

    with tempfile.TemporaryDirectory(prefix="shard-records-") as tmp:
        copies = _download_copies(registry.store, records_key, Path(tmp) / "records.jsonl")
        with open(copies, encoding="utf-8") if copies else contextlib.nullcontext(None) as lines:
            entries = ((item_id, next(lines, "") if lines else "") for item_id in item_ids)
            for (item_id, _), result in ordered_map(load, entries, pool=registry.pool, window=4 * registry.io_workers):
                yield item_id, result


def _download_copies(store: "ObjectStore", key: str | None, dest: Path) -> Path | None:
    """The shard's record copies as a local file, or None (no key, or the file is gone or unreadable)."""
    if not key:
        return None
    try:
        store.get_file(key, dest)
    except NotFoundError:
        return None
    except StoreError as exc:
        log.warning("could not read the shard's record copies %s (reading each record instead): %s", key, exc)
        return None
    return dest


def _copy_of(line: str, item_id: str, dataset_id: str, key: str) -> Item | None:
    """The item record a copy line of ``key`` holds, if it is that item's (else None: read the record itself)."""
    if not line.strip() or line.strip() == "{}":
        return None
    try:
        item = Item.from_json(line)
    except ValidationError:
        return None
    return item if mismatch(item, key, id=item_id, dataset_id=dataset_id) is None else None


def merge_reports(reports: Iterable[Mapping[str, Any]], *, run_id: str | None = None) -> dict[str, Any]:
    """Merge per-shard ``PredictionReport.to_dict()`` dicts (each may carry ``shard``) into one summary.

    Counts are summed; failures are listed with their shard; throughput is items
    predicted per second of the slowest shard (shards run side by side), next to
    the summed per-shard seconds.
    """
    reports = sorted(reports, key=lambda r: (r.get("shard") is None, r.get("shard", 0)))
    total = succeeded = skipped = 0
    failures: list[dict[str, Any]] = []
    fatal: list[dict[str, Any]] = []
    per_shard: list[dict[str, Any]] = []
    versions: set[int] = set()
    models: set[str] = set()
    wall = busy = 0.0
    for n, rep in enumerate(reports):
        shard = rep.get("shard", n)
        t, ok, sk = int(rep.get("total", 0)), int(rep.get("succeeded", 0)), int(rep.get("skipped", 0))
        duration = float(rep.get("duration_s", 0.0) or 0.0)
        total += t
        succeeded += ok
        skipped += sk
        wall = max(wall, duration)
        busy += duration
        if rep.get("model_version") is not None:
            versions.add(int(rep["model_version"]))
        if rep.get("model_id"):
            models.add(str(rep["model_id"]))
        shard_failures = [{**f, "shard": shard} for f in rep.get("failures", [])]
        failures.extend(shard_failures)
        if rep.get("fatal_error"):
            fatal.append({"shard": shard, "error": rep["fatal_error"]})
        per_shard.append(
            {
                "shard": shard,
                "run_id": rep.get("run_id"),
                "total": t,
                "succeeded": ok,
                "skipped": sk,
                "failed": len(shard_failures),
                "attempt": int(rep.get("attempt", 1)),
                "duration_s": round(duration, 3),
                "items_per_second": round(ok / duration, 3) if duration > 0 else 0.0,
            }
        )
    dataset_ids = sorted({str(r["dataset_id"]) for r in reports if r.get("dataset_id")})
    started = sorted(str(r["started_at"]) for r in reports if r.get("started_at"))
    return {
        "run_id": run_id,
        "kind": "pipeline",
        "dataset_id": dataset_ids[0] if len(dataset_ids) == 1 else None,
        "started_at": started[0] if started else None,
        "shards": len(per_shard),
        "model_ids": sorted(models),
        "model_versions": sorted(versions),
        "total": total,
        "succeeded": succeeded,
        "skipped": skipped,
        "failed": len(failures),
        "failures_by_stage": dict(sorted(Counter(f.get("stage", "?") for f in failures).items())),
        "failures": failures,
        "fatal_errors": fatal,
        "duration_s": round(wall, 3),
        "shard_seconds": round(busy, 3),
        "items_per_second": round(succeeded / wall, 3) if wall > 0 else 0.0,
        "per_shard": per_shard,
        "ok": not failures and not fatal,
    }


def _md(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def summary_markdown(summary: Mapping[str, Any], *, max_failures: int = 100) -> str:
    """The merged summary as markdown (for the KFP UI): counts, throughput, shards, failures."""
    versions = ", ".join(str(v) for v in summary.get("model_versions", [])) or "-"
    lines = [
        f"### Prediction run {_md(summary.get('run_id') or '')}",
        "",
        "| | |",
        "| --- | --- |",
        f"| items | {summary.get('total', 0)} |",
        f"| predicted | {summary.get('succeeded', 0)} |",
        f"| already done | {summary.get('skipped', 0)} |",
        f"| failed | {summary.get('failed', 0)} |",
        f"| shards | {summary.get('shards', 0)} |",
        f"| model version(s) | {versions} |",
        f"| wall time (slowest shard) | {summary.get('duration_s', 0.0):.1f} s |",
        f"| throughput | {summary.get('items_per_second', 0.0):.1f} items/s |",
        "",
        "| shard | items | predicted | failed | seconds | items/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in summary.get("per_shard", []):
        lines.append(f"| {s['shard']} | {s['total']} | {s['succeeded']} | {s['failed']} | {s['duration_s']:.1f} | {s['items_per_second']:.1f} |")
    failures = summary.get("failures", [])
    if failures:
        lines += ["", "| failed item | shard | stage | error |", "| --- | --- | --- | --- |"]
        for f in failures[:max_failures]:
            name = f["item_id"] + (f" ({f['path']})" if f.get("path") else "")
            lines.append(f"| {_md(name)} | {f.get('shard', '')} | {_md(f.get('stage', ''))} | {_md(f.get('error', ''))} |")
        if len(failures) > max_failures:
            lines += ["", f"... and {len(failures) - max_failures} more failures."]
    for f in summary.get("fatal_errors", []):
        lines += ["", f"**shard {f['shard']} aborted:** {_md(f['error'])}"]
    return "\n".join(lines) + "\n"
