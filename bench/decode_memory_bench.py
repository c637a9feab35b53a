"""Peak RSS growth of predicting large images with the default loader, against ``prepared_bytes_budget``.

Issue 20, point 7: decoding an image holds more than its array (the decoder's image,
mode conversions, copies). Each case predicts flat PNGs (a few hundred KB on disk) with a
model far slower than the decoding, in a fresh child process that reports its own
high-water mark (``VmHWM``) before and after the run, plus that of its decoding worker
processes when it has any; the ratio growth / budget should stay at or under 1.25.

    python -m bench.decode_memory_bench                      # 13000 x 13000, budgets 512 MiB and 2.5 GiB
    python -m bench.decode_memory_bench --code /work/main    # the same, with another checkout's adapter_base
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from .common import REPO

MIB = 1 << 20
#: Measured peak RSS growth may be at most this many times the budget.
TARGET = 1.25

CHILD = """
import json, os, sys, time
from adapter_base import AnnotationCollection, BaseModelAdapter, Registry

store, dataset, budget, processes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def status(pid="self"):
    with open(f"/proc/{pid}/status") as fh:
        return {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in fh) if k in ("VmHWM", "VmRSS")}

def children():
    pids = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as fh:
            pids += [int(p) for p in fh.read().split()]
    return pids

class Sink(BaseModelAdapter):
    calls = 0
    def load(self, local_path, **kw):
        self.model = "sink"
    def predict(self, batch, **kw):
        Sink.calls += 1
        time.sleep(3.0 if Sink.calls == 1 else 0.05)  # everything the engine lets through is decoded and waiting
        return [AnnotationCollection() for _ in batch]

registry = Registry.open(store)
items = list(registry.iter_items(registry.get_dataset(dataset)))
adapter = Sink(registry=registry, configuration={"prepared_bytes_budget": budget, "decode_processes": processes})
adapter.load_from_model(registry.get_model("sink"))
if processes:
    from adapter_base.prediction.decoders import ProcessDecoder
    ProcessDecoder(processes).start()
workers = {pid: status(pid)["VmRSS"] for pid in children()}
before = status()["VmHWM"]
report = adapter.predict_items(items, batch_size=4, save_report=False)
growth = status()["VmHWM"] - before + sum(status(pid)["VmHWM"] - rss for pid, rss in workers.items())
print("RESULT", json.dumps({"growth_mib": growth / 1024, "ok": report.succeeded, "failed": report.failed,
      "errors": [f.error[-160:] for f in report.failures]}), flush=True)
"""


def png(side: int, kind: str) -> bytes:
    """A flat ``side`` x ``side`` PNG: 8-bit RGB (``rgb8``) or 16-bit grey (``grey16``)."""
    import io

    from PIL import Image

    if kind == "rgb8":
        img = Image.new("RGB", (side, side), (90, 140, 200))
    else:
        img = Image.fromarray(np.full((side, side), 40000, dtype=np.uint16))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def build(root: Path, side: int, kind: str, count: int) -> str:
    """A local store under ``root`` with ``count`` images of ``kind`` and a model ``sink``; its URI."""
    from adapter_base import Registry

    store = root / f"{kind}-{side}-{count}"
    if not (store / ".built").exists():
        data = png(side, kind)
        with Registry.open(str(store)) as registry:
            ds = registry.create_dataset("big")
            for i in range(count):
                registry.add_item(ds, f"{i}.png", data)
            registry.create_model("sink")
        (store / ".built").write_text(str(len(data)))
    return str(store)


def measure(store: str, budget: int, processes: int, code: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), store, "big", str(budget), str(processes)],
        env=env, cwd=str(code), capture_output=True, text=True, timeout=1800,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=13000, help="image width and height in pixels")
    ap.add_argument("--budgets-mib", default="512,2560", help="prepared_bytes_budget values to try, MiB")
    ap.add_argument("--processes", type=int, default=0, help="decode_processes (0: decode on the prepare threads)")
    ap.add_argument("--code", type=Path, default=REPO, help="the checkout whose adapter_base the children run")
    ap.add_argument("--root", type=Path, default=Path("/tmp/decode-memory-bench"), help="where the stores are built")
    a = ap.parse_args()
    a.root.mkdir(parents=True, exist_ok=True)
    for budget in [int(x) * MIB for x in a.budgets_mib.split(",")]:
        for kind, count in (("rgb8", 1), ("grey16", 1), ("rgb8", 4)):
            r = measure(build(a.root, a.side, kind, count), budget, a.processes, a.code)
            ratio = r["growth_mib"] * MIB / budget
            verdict = "ok" if ratio <= TARGET else "OVER"
            note = f"; refused: {r['errors'][0]}" if r["errors"] else ""
            print(
                f"{kind:>6} x{count} {a.side}x{a.side} budget {budget // MIB:>5} MiB: peak RSS +{r['growth_mib']:7.0f} MiB = "
                f"{ratio:4.2f} x budget [{verdict}] ({r['ok']} predicted, {r['failed']} failed{note})",
                flush=True,
            )


if __name__ == "__main__":
    main()
