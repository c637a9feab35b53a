"""Issue 24, point 4: bulk GET / PUT of many small objects, the store's ``minio`` client against ``obstore``.

The prediction run's item I/O is many small objects: each item's binary read, each
prediction set written. Here ``count`` objects of ``size`` bytes are written and then read
back, ``concurrency`` requests in flight, on SeaweedFS over loopback and through the latency
proxy ``bench/latency_bench.py`` uses (every response ``latency_ms`` later):

- ``minio``: ``S3Store.put_bytes`` / ``get_bytes`` from a ``ThreadPoolExecutor(concurrency)``,
  as the prediction run calls them (the store's retries and key checks included);
- ``obstore``: ``obstore.put_async`` / ``get_async`` (Rust ``object_store``: HTTP, signing
  and retries off the GIL) gathered on one asyncio loop, at most ``concurrency`` at once.

Every repeat runs every (endpoint, size, client) in a rotating order; the figure is the
median of ``repeats`` objects/s with the min-max. Adopting ``obstore`` for item I/O asks for
>= ``ADOPT_RATIO`` x minio's rate at ``latency_ms`` and no loss on loopback (both directions).

    python -m bench.s3_bulk_bench --count 2000 --sizes 16,100 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from adapter_base.storage.s3 import S3Store

from .common import BENCH_BUCKET, REPEATS, scratch_dir, seaweed_server, spread
from .latency_bench import LATENCY_MS, latency_proxy

CLIENTS = ("minio", "obstore")
OPS = ("put", "get")
#: obstore replaces minio for item I/O only if it is at least this much faster at ``LATENCY_MS``.
ADOPT_RATIO = 1.3
CONCURRENCY = 16  # the prediction run's default io_workers


def obstore_client(endpoint: str, prefix: str) -> Any:
    """An ``obstore`` S3 store on ``BENCH_BUCKET/prefix`` at ``endpoint`` (path style, http allowed), keys from ``AWS_*``."""
    from obstore.store import S3Store as ObS3Store

    return ObS3Store(
        BENCH_BUCKET,
        prefix=prefix,
        endpoint=endpoint,
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "pool_max_idle_per_host": str(CONCURRENCY)},
    )


def minio_bulk(store: S3Store, op: str, keys: list[str], payload: bytes, concurrency: int) -> int:
    """``op`` every key with the store's client from ``concurrency`` threads; bytes moved."""
    with ThreadPoolExecutor(concurrency) as pool:
        if op == "put":
            list(pool.map(lambda k: store.put_bytes(k, payload), keys))
            return len(keys) * len(payload)
        return sum(len(b) for b in pool.map(store.get_bytes, keys))


def obstore_bulk(store: Any, op: str, keys: list[str], payload: bytes, concurrency: int) -> int:
    """``op`` every key with ``obstore`` on one asyncio loop, ``concurrency`` at once; bytes moved."""
    import obstore

    async def one(sem: asyncio.Semaphore, key: str) -> int:
        async with sem:
            if op == "put":
                await obstore.put_async(store, key, payload)
                return len(payload)
            resp = await obstore.get_async(store, key)
            return len(await resp.bytes_async())

    async def run() -> int:
        sem = asyncio.Semaphore(concurrency)
        return sum(await asyncio.gather(*(one(sem, k) for k in keys)))

    return asyncio.run(run())


def measure(endpoint: str, *, count: int, size: int, concurrency: int, order: list[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """Each client in ``order`` writes ``count`` new objects of ``size`` bytes, then reads them; per op
    objects/s and this process's CPU ms per object."""
    payload = os.urandom(size)
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for client in order:
        prefix = f"bulk-{uuid.uuid4().hex[:8]}"
        keys = [f"items/{i // 500:03d}/{i:06d}.bin" for i in range(count)]
        if client == "minio":
            store = S3Store.from_uri(f"s3://{BENCH_BUCKET}/{prefix}", endpoint=endpoint)
            store.open()
            bulk: Callable[[str], int] = lambda op: minio_bulk(store, op, keys, payload, concurrency)  # noqa: E731
        else:
            ob = obstore_client(endpoint, prefix)
            bulk = lambda op: obstore_bulk(ob, op, keys, payload, concurrency)  # noqa: E731
        out[client] = {}
        for op in OPS:
            c0, t0 = time.process_time(), time.perf_counter()
            moved = bulk(op)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if moved != count * size:
                raise RuntimeError(f"{client} {op}: moved {moved} bytes, expected {count * size}")
            out[client][op] = (count / wall, 1000 * cpu / count)
        if client == "minio":
            store.close()
    return out


def run(
    scratch: Path,
    *,
    count: int = 2000,
    sizes_kib: tuple[int, ...] = (16, 100),
    repeats: int = REPEATS,
    latency_ms: float = LATENCY_MS,
    concurrency: int = CONCURRENCY,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every (endpoint, size, client) ``repeats`` times interleaved on a fresh SeaweedFS; rates, ratios and the verdict."""
    endpoints = ("loopback", f"{latency_ms:g} ms")
    rates: dict[str, dict[int, dict[str, dict[str, list[float]]]]] = {
        e: {s: {c: {op: [] for op in OPS} for c in CLIENTS} for s in sizes_kib} for e in endpoints
    }
    cpu_ms = {e: {s: {c: {op: [] for op in OPS} for c in CLIENTS} for s in sizes_kib} for e in endpoints}
    with seaweed_server(scratch) as server, latency_proxy(server.s3_port, latency_ms) as (proxy_port, _):
        urls = {endpoints[0]: f"http://127.0.0.1:{server.s3_port}", endpoints[1]: f"http://127.0.0.1:{proxy_port}"}
        for r in range(repeats):
            order = list(CLIENTS[r % 2 :] + CLIENTS[: r % 2])
            for e in endpoints:
                for s in sizes_kib:
                    got = measure(urls[e], count=count, size=s * 1024, concurrency=concurrency, order=order)
                    for c, per_op in got.items():
                        for op, (rate, cpu) in per_op.items():
                            rates[e][s][c][op].append(rate)
                            cpu_ms[e][s][c][op].append(cpu)
            progress(f"  [s3 bulk] repeat {r + 1}/{repeats} done (load {os.getloadavg()[0]:.2f})")
    rows = []
    for e in endpoints:
        for s in sizes_kib:
            for op in OPS:
                m, o = spread(rates[e][s]["minio"][op]), spread(rates[e][s]["obstore"][op])
                per_repeat = [b / a for a, b in zip(rates[e][s]["minio"][op], rates[e][s]["obstore"][op])]
                rows.append({"endpoint": e, "size_kib": s, "op": op, "minio": m, "obstore": o,
                             "ratio": round(o["median"] / m["median"], 3), "ratio_per_repeat": spread(per_repeat, 3),
                             "cpu_ms_per_object": {c: spread(cpu_ms[e][s][c][op], 3) for c in CLIENTS}})  # fmt: skip
    at_latency = [row["ratio"] for row in rows if row["endpoint"] == endpoints[1]]
    on_loopback = [row["ratio"] for row in rows if row["endpoint"] == endpoints[0]]
    adopt = min(at_latency) >= ADOPT_RATIO and min(on_loopback) >= 1.0
    out = {"count": count, "sizes_kib": list(sizes_kib), "repeats": repeats, "latency_ms": latency_ms, "concurrency": concurrency,
           "rows": rows, "adopt": adopt, "loadavg": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    for row in rows:
        progress(
            f"  [s3 bulk] {row['endpoint']:>8s} {row['size_kib']:>4d} KiB {row['op']}: minio {_fmt(row['minio'])} obstore {_fmt(row['obstore'])} "
            f"objects/s: {row['ratio']:.2f}x; CPU here {row['cpu_ms_per_object']['minio']['median']:.2f} vs "
            f"{row['cpu_ms_per_object']['obstore']['median']:.2f} ms/object"
        )
    progress(f"  [s3 bulk] obstore for item I/O: {'adopt' if adopt else 'keep minio'} (needs >= {ADOPT_RATIO:g}x at {latency_ms:g} ms and >= 1x on loopback)")
    return out


def _fmt(s: dict[str, float]) -> str:
    return f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"


def render(res: dict[str, Any]) -> list[str]:
    """The Markdown section of this bench."""
    out = [
        "### 7. Bulk small-object I/O on S3: the store's minio client vs obstore (objects/s; higher is better)",
        "",
        f"{res['count']:,} objects per size written then read back, {res['concurrency']} requests in flight, SeaweedFS on loopback "
        f"and through the {res['latency_ms']:g} ms latency proxy (`bench/s3_bulk_bench.py`); median of {res['repeats']} interleaved "
        f"repeats with the min-max. minio: `S3Store.put_bytes` / `get_bytes` on threads; obstore: `put_async` / `get_async` on one "
        f"asyncio loop. Adopting obstore for item I/O needs >= {ADOPT_RATIO:g}x at {res['latency_ms']:g} ms and >= 1x on loopback: "
        f"**{'adopt' if res['adopt'] else 'minio kept'}**. Load average at the end: {res['loadavg']}.",
        "",
        "| endpoint | object size | op | minio | obstore | obstore / minio (per repeat: min-max) | CPU ms/object here: minio, obstore |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for row in res["rows"]:
        rr, cpu = row["ratio_per_repeat"], row["cpu_ms_per_object"]
        out.append(
            f"| {row['endpoint']} | {row['size_kib']} KiB | {row['op'].upper()} | {_fmt(row['minio'])} | {_fmt(row['obstore'])} | "
            f"{row['ratio']:.2f} ({rr['min']:.2f}-{rr['max']:.2f}) | {cpu['minio']['median']:.2f}, {cpu['obstore']['median']:.2f} |"
        )
    out.append("")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench.s3_bulk_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000, help="objects per size (default 2000)")
    ap.add_argument("--sizes", default="16,100", help="object sizes in KiB (default 16,100)")
    ap.add_argument("--repeats", type=int, default=REPEATS)
    ap.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY)
    a = ap.parse_args(argv)
    print(f"load average at the start: {os.getloadavg()}")
    with scratch_dir("s3bulk-") as scratch:
        out = run(scratch, count=a.count, sizes_kib=tuple(int(x) for x in a.sizes.split(",")), repeats=a.repeats,
                  latency_ms=a.latency_ms, concurrency=a.concurrency)  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
