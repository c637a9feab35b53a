"""Item 3: ``save_to_model`` / ``load_from_model`` against the plain ``minio`` client, same bytes, same server.

Two shapes: one large file (500 MB by default, random bytes written to a temp dir) and many
small files (2,000 x 16 KiB). Ours computes and verifies a SHA-256 digest of every file;
the plain client does not. The plain client gets its best settings: before the timed
repeats every candidate setting (part size x parallel parts for the large file, threads
for small files) is tried once and the fastest is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import urllib3
from minio import Minio

from adapter_base import BaseModelAdapter, Registry
from adapter_base.local_dirs import MARKER
from adapter_base.storage import open_store

from .common import BENCH_BUCKET, Meter, Sample, fmt_spread, median, rate_spread

MiB = 1 << 20
LARGE_CANDIDATES = [(16 * MiB, 4), (16 * MiB, 8), (64 * MiB, 4), (32 * MiB, 8)]  # (part_size, parallel parts)
SMALL_CANDIDATES = [8, 16, 32]  # threads
MEASURES = ("ours_save", "plain_upload", "ours_load", "plain_download")


class FilesAdapter(BaseModelAdapter):
    """``save`` and ``load`` do nothing: the files are already in ``local_path`` (or only downloaded)."""

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.model = local_path

    def save(self, local_path: str, **kwargs: Any) -> None:
        pass


def make_large(root: Path, size: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "weights.bin", "wb") as fh:
        left = size
        while left:
            n = min(left, 8 * MiB)
            fh.write(os.urandom(n))
            left -= n


def make_small(root: Path, count: int, size: int) -> None:
    for i in range(count):
        p = root / f"shard-{i // 250:02d}" / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))


def plain_client(server: Any, threads: int) -> Minio:
    http = urllib3.PoolManager(maxsize=max(threads, 8), timeout=urllib3.Timeout(connect=10, read=120), retries=urllib3.Retry(total=2))
    return Minio(f"127.0.0.1:{server.s3_port}", access_key=server.access_key, secret_key=server.secret_key, secure=False, region="us-east-1", http_client=http)


def files_of(root: Path) -> list[tuple[str, Path]]:
    return sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())


def plain_upload(client: Minio, files: list[tuple[str, Path]], prefix: str, setting: Any, large: bool) -> None:
    if large:
        part_size, parallel = setting
        for rel, path in files:
            client.fput_object(BENCH_BUCKET, f"{prefix}/{rel}", str(path), part_size=part_size, num_parallel_uploads=parallel)
        return
    with ThreadPoolExecutor(setting) as pool:
        list(pool.map(lambda f: client.fput_object(BENCH_BUCKET, f"{prefix}/{f[0]}", str(f[1])), files))


def plain_download(client: Minio, rels: list[str], prefix: str, dest: Path, threads: int) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if threads == 1:
        for rel in rels:
            client.fget_object(BENCH_BUCKET, f"{prefix}/{rel}", str(dest / rel))
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda rel: client.fget_object(BENCH_BUCKET, f"{prefix}/{rel}", str(dest / rel)), rels))


def run_shape(
    shape: str,
    server: Any,
    workdir: Path,
    *,
    repeats: int,
    large_mb: int = 500,
    small_count: int = 2000,
    small_kib: int = 16,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    large = shape == "large"
    src = Path(tempfile.mkdtemp(prefix=f"art-{shape}-src-", dir=workdir))
    dst = Path(tempfile.mkdtemp(prefix=f"art-{shape}-dst-", dir=workdir))
    if large:
        make_large(src, large_mb * MiB)
    else:
        make_small(src, small_count, small_kib * 1024)
    files = files_of(src)
    total = sum(p.stat().st_size for _, p in files)
    prefix = f"plain-{shape}-{os.getpid()}-{int(time.time())}"
    meter = Meter(server.pid)

    uri = f"s3://{BENCH_BUCKET}/ours-{shape}-{os.getpid()}-{int(time.time())}"
    registry = Registry(open_store(uri))
    model = registry.create_model(f"artifacts-{shape}")
    adapter = FilesAdapter(registry=registry)
    adapter.bind_model(model)

    # The plain client's best settings, each tried once (after one warm-up upload).
    candidates: list[Any] = LARGE_CANDIDATES if large else SMALL_CANDIDATES
    client = plain_client(server, 32)
    plain_upload(client, files, prefix, candidates[0], large)
    best_up, best_t = candidates[0], float("inf")
    for c in candidates:
        t = time.perf_counter()
        plain_upload(client, files, prefix, c, large)
        if (dt := time.perf_counter() - t) < best_t:
            best_up, best_t = c, dt
    rels = [rel for rel, _ in files]
    down_candidates = [1] if large else SMALL_CANDIDATES
    best_down, best_t = down_candidates[0], float("inf")
    for c in down_candidates:
        t = time.perf_counter()
        plain_download(client, rels, prefix, dst / "plain", c)
        if (dt := time.perf_counter() - t) < best_t:
            best_down, best_t = c, dt
    # Warm up ours too (connections, the bucket check).
    adapter.save_to_model(local_path=str(src))
    adapter.load_from_model(adapter.model_entity, local_path=str(dst / "ours"))

    runs: dict[str, Callable[[], Any]] = {
        "ours_save": lambda: adapter.save_to_model(local_path=str(src)),
        "plain_upload": lambda: plain_upload(client, files, prefix, best_up, large),
        "ours_load": lambda: adapter.load_from_model(adapter.model_entity, local_path=str(dst / "ours")),
        "plain_download": lambda: plain_download(client, rels, prefix, dst / "plain", best_down),
    }
    samples: dict[str, list[Sample]] = {m: [] for m in MEASURES}
    for r in range(repeats):
        order = MEASURES[r % len(MEASURES) :] + MEASURES[: r % len(MEASURES)]
        for m in order:
            s, _ = meter.measure(runs[m])
            samples[m].append(s)
    # Ours really did verify and place every file (besides the marker of a folder the framework made).
    got = [(r, p) for r, p in files_of(dst / "ours") if r != MARKER]
    if [r for r, _ in got] != rels or sum(p.stat().st_size for _, p in got) != total:
        raise RuntimeError(f"load_from_model did not reproduce the {shape} tree")
    registry.close()
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(dst, ignore_errors=True)

    wall = {m: median([s.wall_s for s in v]) for m, v in samples.items()}
    mbps = {m: rate_spread(total / MiB, [s.wall_s for s in v]) for m, v in samples.items()}
    out = {
        "files": len(files),
        "bytes": total,
        "repeats": repeats,
        "plain_upload_setting": (
            {"part_size_mib": best_up[0] // MiB, "num_parallel_uploads": best_up[1]} if large else {"threads": best_up}
        ),
        "plain_download_setting": {"threads": best_down},
        "median_s": {m: round(v, 4) for m, v in wall.items()},
        "mib_per_s": mbps,
        "median_cpu_s": {m: round(median([s.cpu_s for s in v]), 3) for m, v in samples.items()},
        "median_server_cpu_s": {m: round(median([s.server_cpu_s for s in v]), 3) for m, v in samples.items()},
        "save_vs_plain": round(wall["plain_upload"] / wall["ours_save"], 3),
        "load_vs_plain": round(wall["plain_download"] / wall["ours_load"], 3),
        "samples": {m: [s.to_dict() for s in v] for m, v in samples.items()},
    }
    progress(
        f"  [{shape}] {len(files)} file(s), {total / MiB:.0f} MiB: save {fmt_spread(mbps['ours_save'], '.1f')} MiB/s vs plain "
        f"{fmt_spread(mbps['plain_upload'], '.1f')} ({out['save_vs_plain']:.2f}x), load {fmt_spread(mbps['ours_load'], '.1f')} vs plain "
        f"{fmt_spread(mbps['plain_download'], '.1f')} ({out['load_vs_plain']:.2f}x)"
    )
    return out
