"""Issue 15, target 4: store requests per predicted item, and throughput at a cloud store's latency.

SeaweedFS on loopback answers in ~0.3 ms; a cloud S3 in 10-30 ms, where a run's speed is
requests in flight / (requests per item x latency). ``predict_dataset`` runs here against
SeaweedFS behind a TCP proxy that delays every response by ``latency_ms``
(``tests/support/tcpproxy.py``, in a process of its own so it takes no GIL turns from the
run), through a store wrapper that counts the requests (``storage.counting``). The dataset
is built and listed once beforehand without the proxy (as an import, or any earlier
listing, leaves it: item records in pages). The model costs next to nothing, so the
store's round trips are the bound.

Targets: at most 2 requests per item plus the listing's, and items/s >= 80% of
in_flight / (requests_per_item x latency), in_flight being the requests the run keeps in
flight (its read and write threads, ``prediction.pools``). The CPU seconds per item of the
run, the store server and the proxy are reported apart (the server and the proxy are
children of this process; they are not counted in the run's), with the rate the machine's
CPUs allow when the three share them: on a few CPUs that, not the latency, can be the bound.

    python -m bench.latency_bench --n 2000 --latency-ms 20 --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from adapter_base import Registry
from adapter_base.prediction import PredictionOptions
from adapter_base.prediction.pools import plan_pools, uses_default_prepare
from adapter_base.storage import open_store
from adapter_base.storage.counting import CountingStore
from adapter_base.storage.s3 import S3Store

from .common import REPEATS, REPO, figure, fmt_spread, s3_uri, scratch_dir, seaweed_server, spread
from .memory_bench import build

LATENCY_MS = 20.0
MAX_REQUESTS_PER_ITEM = 2.0
MIN_FRACTION_OF_BOUND = 0.8
#: The model: no layers, small inputs; what is left is the host's per-item work.
MODEL_CONFIGURATION = {"work": 0, "dim": 64, "boxes": 5}


@contextlib.contextmanager
def latency_proxy(target_port: int, latency_ms: float) -> Iterator[tuple[int, int]]:
    """A ``tcpproxy.py`` process delaying every response of ``127.0.0.1:target_port``; yields its port and pid."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "support" / "tcpproxy.py"), str(target_port), "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the latency proxy did not start (it printed {line!r})")
        yield int(line), proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def measure(
    uri: str, proxy: tuple[int, int], dataset: str, *, batch_size: int, latency_ms: float, server_pid: int, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One ``predict_dataset`` run through the proxy: requests per item, items/s, the bound they imply, CPU spent."""
    import psutil

    from .common import machine_busy_s, tree_cpu
    from .models import CostModelAdapter

    proxy_port, proxy_pid = proxy
    procs = {"run": psutil.Process(), "server": psutil.Process(server_pid), "proxy": psutil.Process(proxy_pid)}

    store = CountingStore(S3Store.from_uri(uri, endpoint=f"http://127.0.0.1:{proxy_port}"))
    with Registry(store) as registry:
        model = registry.create_model(f"latency-{int(time.time() * 1000) % 10**9}", configuration={**MODEL_CONFIGURATION, **(configuration or {})})
        adapter = CostModelAdapter(registry=registry)
        adapter.load_from_model(model)
        ds = registry.get_dataset(dataset)
        options = PredictionOptions.from_configuration(adapter.configuration, batch_size=batch_size)
        pools = plan_pools(options, store, default_prepare=uses_default_prepare(adapter))
        store.reset()
        cpu0, busy0, t0 = {k: tree_cpu(p) for k, p in procs.items()}, machine_busy_s(), time.perf_counter()
        report = adapter.predict_dataset(ds, batch_size=batch_size, save_report=False)
        wall = time.perf_counter() - t0
        cpu = {k: tree_cpu(p) - cpu0[k] for k, p in procs.items()}  # each process with its children (the decoding processes)
        # The server and the proxy are children of this process where it started them: count them once, as theirs.
        descendants = {c.pid for c in procs["run"].children(recursive=True)}
        cpu["run"] -= sum(cpu[k] for k in ("server", "proxy") if procs[k].pid in descendants)
        other = max(0.0, machine_busy_s() - busy0 - sum(cpu.values()))
        counts = store.snapshot()
        busy = dict(store.busy_s)
    if report.succeeded != report.total or not report.ok:
        raise RuntimeError(f"the run did not predict every item: {report.summary()}")
    n = report.succeeded
    # Items read in worker processes are read there, one GET each, and sets written from the writing
    # processes, one PUT each, on stores those processes open themselves: the counting wrapper here does not see them.
    # Each item's set is written once, here or there (on S3 a batch's sets go there only while predict is CPU-bound).
    worker_gets = n if pools.batch_processes else 0
    worker_puts = max(0, n - counts.get("put", 0)) if pools.write_processes else 0
    counts = dict(counts, get=counts.get("get", 0) + worker_gets, put=counts.get("put", 0) + worker_puts)
    per_item = {op: counts.get(op, 0) / n for op in ("get", "put")}
    requests = sum(counts.values())
    gets_puts_per_item = per_item["get"] + per_item["put"]  # what grows with N; the listing is amortized
    in_flight = (pools.batch_processes * pools.fetch_threads or pools.prepare_threads) + pools.write_threads
    bound = in_flight / (gets_puts_per_item * latency_ms / 1000)
    items_per_s = n / wall
    return {
        "items": n,
        "latency_ms": latency_ms,
        "wall_s": round(wall, 3),
        "items_per_s": round(items_per_s, 1),
        "requests": counts,
        "gets_in_worker_processes": worker_gets,
        "puts_in_worker_processes": worker_puts,
        "requests_total": requests,
        "requests_per_item": round(requests / n, 4),
        "gets_per_item": round(per_item["get"], 4),
        "gets_puts_per_item": round(gets_puts_per_item, 4),
        "puts_per_item": round(per_item["put"], 4),
        "in_flight": in_flight,
        "max_in_flight_seen": store.max_in_flight,
        "mean_in_flight": {op: round(s / wall, 2) for op, s in busy.items()},
        "mean_request_ms": {op: round(1000 * busy[op] / counts[op], 1) for op in busy if counts.get(op)},
        "bound_items_per_s": round(bound, 1),
        "fraction_of_bound": round(items_per_s / bound, 3),
        # CPU: this process and its decoding processes; the store server and the proxy; everything else on the machine
        "cpu_ms_per_item": round(1000 * cpu["run"] / n, 3),
        "server_and_proxy_cpu_ms_per_item": round(1000 * (cpu["server"] + cpu["proxy"]) / n, 3),
        "server_cpu_ms_per_item": round(1000 * cpu["server"] / n, 3),
        "proxy_cpu_ms_per_item": round(1000 * cpu["proxy"] / n, 3),
        # What the CPUs allow with the machine to itself: the run, the server and the proxy share them.
        "cpu_bound_items_per_s": round(1000 * (os.cpu_count() or 1) / max(1e-9, 1000 * sum(cpu.values()) / n), 1),
        "other_cpu_s": round(other, 1),
        "machine_busy": round((sum(cpu.values()) + other) / (wall * (os.cpu_count() or 1)), 3),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def run(
    scratch: Path,
    *,
    n: int,
    latency_ms: float = LATENCY_MS,
    batch_size: int = 16,
    configuration: dict[str, Any] | None = None,
    repeats: int = 1,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build ``n`` items in a fresh SeaweedFS, predict them ``repeats`` times through the latency proxy (each run
    writes new sets); the figures (with more than one repeat, the median and min-max of each) and targets."""
    with seaweed_server(scratch) as server:
        uri = s3_uri()
        with Registry(open_store(uri)) as registry:
            name = build(registry, "latency", n)
        with latency_proxy(server.s3_port, latency_ms) as port:
            runs = [
                measure(uri, port, name, batch_size=batch_size, latency_ms=latency_ms, server_pid=server.pid, configuration=configuration)
                for _ in range(max(1, repeats))
            ]
    out = _combined(runs)
    out["configuration"] = dict(configuration or {})
    out["met_requests"] = out["requests_per_item"] <= MAX_REQUESTS_PER_ITEM + 0.05  # + the amortized listing
    out["met_throughput"] = figure(out["fraction_of_bound"]) >= MIN_FRACTION_OF_BOUND
    progress(
        f"  {n} items at {latency_ms:g} ms a request: {out['requests_per_item']:.3f} requests/item "
        f"({out['gets_per_item']:.3f} GET + {out['puts_per_item']:.3f} PUT, then {out['requests'].get('list', 0)} listing); "
        f"{'met' if out['met_requests'] else 'MISSED'} (target <= {MAX_REQUESTS_PER_ITEM:g} + the listing)"
    )
    progress(
        f"  {fmt_spread(out['items_per_s'], ',.1f')} items/s vs in_flight / (requests_per_item x latency) = {out['in_flight']} / "
        f"({out['gets_puts_per_item']:.3f} GET + PUT x {latency_ms / 1000:g} s) = {out['bound_items_per_s']:,.1f}: "
        f"{fmt_spread(out['fraction_of_bound'], '.2f')} of the bound, {'met' if out['met_throughput'] else 'MISSED'} (target >= {MIN_FRACTION_OF_BOUND:g}); "
        f"in flight on average {out['mean_in_flight'].get('get', 0):.1f} GETs + {out['mean_in_flight'].get('put', 0):.1f} PUTs of {out['in_flight']} threads"
        + (f" ({out['gets_in_worker_processes']} GETs made in the reading worker processes, not timed here)" if out["gets_in_worker_processes"] else "")
        + (f" ({out.get('puts_in_worker_processes', 0)} PUTs made in the writing worker processes, not timed here)" if out.get("puts_in_worker_processes") else "")
    )
    progress(
        f"  CPU: {fmt_spread(out['cpu_ms_per_item'], '.2f')} ms/item here (with decoding processes), {fmt_spread(out['server_cpu_ms_per_item'], '.2f')} ms/item "
        f"in the store server, {fmt_spread(out['proxy_cpu_ms_per_item'], '.2f')} in the proxy; {out['other_cpu_s']} s by everything else on the machine "
        f"({out['cpus']} CPUs, load {out['loadavg']}): CPU allows at most {fmt_spread(out['cpu_bound_items_per_s'], ',.0f')} items/s here "
        f"({figure(out['cpu_bound_items_per_s']) / out['bound_items_per_s']:.2f} of the in-flight bound) with the machine to itself; "
        f"the machine was {100 * figure(out['machine_busy']):.0f}% busy during the run"
        + (f" (figures: median (min-max) of {out['repeats']} runs)" if out["repeats"] > 1 else "")
    )
    return out


#: Figures that vary from run to run: with several repeats, each is reported as its median with the min-max.
VARYING = (
    "wall_s", "items_per_s", "fraction_of_bound", "cpu_ms_per_item", "server_cpu_ms_per_item", "proxy_cpu_ms_per_item",
    "server_and_proxy_cpu_ms_per_item", "cpu_bound_items_per_s", "machine_busy",
)  # fmt: skip


def _combined(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result for ``runs`` of the same measure: the run of median throughput, its ``VARYING`` figures as spreads."""
    middle = sorted(runs, key=lambda r: r["items_per_s"])[len(runs) // 2]
    out = dict(middle, repeats=len(runs))
    if len(runs) > 1:
        for key in VARYING:
            out[key] = spread([r[key] for r in runs], 3 if key in ("fraction_of_bound", "machine_busy") else 2)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench.latency_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="items (default 2000)")
    ap.add_argument("--latency-ms", type=float, default=LATENCY_MS, help="delay added to every response (default 20)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=REPEATS, help=f"runs of the measure (default {REPEATS})")
    ap.add_argument("--configuration", default="{}", help='framework settings for the run, JSON (e.g. \'{"io_chunk": 1}\'); default: the defaults')
    a = ap.parse_args(argv)
    with scratch_dir("latency-") as scratch:
        out = run(scratch, n=a.n, latency_ms=a.latency_ms, batch_size=a.batch_size, configuration=json.loads(a.configuration), repeats=a.repeats)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
