"""Sorting more lines than should be held in memory: sorted runs spilled to temp files, then merged.

A listing must come out in key order from sources that do not give it (a local directory,
a SeaweedFS directory level); a dataset's records directory holds one entry per item.
"""

from __future__ import annotations

import heapq
import tempfile
from typing import IO, Iterable, Iterator

#: Lines sorted in memory at once (~1 MiB of short names); more are spilled in sorted runs.
RUN_LINES = 10_000


def sorted_lines(lines: Iterable[str], *, run: int | None = None) -> Iterator[str]:
    """``lines`` in sorted order, holding at most ``run`` of them in memory (default ``RUN_LINES``).

    ``lines`` is consumed before this returns (so a failure to produce them surfaces here);
    the sorted lines are then read back lazily. Lines must not contain a newline (the spill
    files hold one per line); undecodable characters (``surrogateescape``) survive.
    """
    limit = run or RUN_LINES
    runs: list[IO[str]] = []
    batch: list[str] = []
    try:
        for line in lines:
            if "\n" in line:
                raise ValueError(f"cannot sort a line holding a newline: {line!r}")
            batch.append(line)
            if len(batch) >= limit:
                runs.append(_spill(batch))
                batch = []
        if runs and batch:
            runs.append(_spill(batch))  # sorts it
            batch = []
        batch.sort()
    except BaseException:
        for fh in runs:
            fh.close()
        raise
    return _merged(batch, runs)


def _merged(batch: list[str], runs: list[IO[str]]) -> Iterator[str]:
    try:
        if not runs:
            yield from batch
            return
        yield from heapq.merge(*((line[:-1] for line in fh) for fh in runs))
    finally:
        for fh in runs:
            fh.close()


def _spill(batch: list[str]) -> IO[str]:
    batch.sort()
    fh = tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogateescape", newline="\n", prefix="sorted-run-")
    try:
        fh.writelines(line + "\n" for line in batch)
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    return fh
