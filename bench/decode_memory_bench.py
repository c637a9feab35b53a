"""Peak RSS growth of predicting large images with the default loader, against ``prepared_bytes_budget``.

Issue 20, point 7: decoding an image holds more than its array (the decoder's image,
mode conversions, copies). Each case predicts flat PNGs (a few hundred KB on disk) with a
model far slower than the decoding, in a fresh child process that reports its own
high-water mark (``VmHWM``) before and after the run (with decoding worker processes: the
pages of the process tree and the shared memory blocks, sampled); the ratio growth /
budget should stay at or under 1.25.

    python -m bench.decode_memory_bench                      # 13000 x 13000, budgets 512 MiB and 2.5 GiB
    python -m bench.decode_memory_bench --code /work/main    # the same, with another checkout's adapter_base
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from .common import REPO

MIB = 1 << 20
#: Measured peak RSS growth may be at most this many times the budget.
TARGET = 1.25

CHILD = """
import json, os, sys, threading, time
from adapter_base import AnnotationCollection, BaseModelAdapter, Registry

store, configuration, batch, sleep = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

def hwm_kib():
    # This process's own high-water mark: ru_maxrss would start from the RSS of the (large)
    # process that started it, which Linux carries across fork and exec.
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))

def children():
    pids = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as fh:
            pids += [int(p) for p in fh.read().split()]
    return pids

def held_kib(pids):
    # What this process and its decoding workers hold: their own pages, and the shared memory
    # blocks they map, whole (a block the caller has not touched yet is in no process's RSS).
    # Blocks are counted from these processes' maps, once each, so other processes' shared
    # memory on the machine does not count.
    total, blocks = 0, {}
    for pid in pids:
        with open(f"/proc/{pid}/status") as fh:
            total += next(int(ln.split()[1]) for ln in fh if ln.startswith("RssAnon:"))
        with open(f"/proc/{pid}/maps") as fh:
            for ln in fh:
                if "/dev/shm/" in ln:
                    span, _, _, _, inode = ln.split()[:5]
                    start, end = (int(x, 16) for x in span.split("-"))
                    blocks[inode] = max(blocks.get(inode, 0), end - start)
    return total + sum(blocks.values()) // 1024

class Sink(BaseModelAdapter):
    calls = 0
    def load(self, local_path, **kw):
        self.model = "sink"
    def predict(self, batch, **kw):
        # A model far slower than the decoding: during the first call every image the engine
        # lets through is decoded and waiting. It reads every page of its inputs, as a model does.
        Sink.calls += 1
        for x in batch:
            x.reshape(-1)[::4096].sum()
        time.sleep(sleep if Sink.calls == 1 else 0.05)
        return [AnnotationCollection() for _ in batch]

registry = Registry.open(store)
items = list(registry.iter_items(registry.get_dataset("big")))
adapter = Sink(registry=registry, configuration=configuration)
adapter.load_from_model(registry.get_model("sink"))
if configuration.get("decode_processes"):
    from adapter_base.prediction.decoders import ProcessDecoder
    ProcessDecoder(configuration["decode_processes"]).start()  # forked now, before the baseline
pids = [os.getpid(), *children()]
peak, stop = [held_kib(pids)], threading.Event()

def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], held_kib(pids))
        time.sleep(0.002)

before, base = hwm_kib(), peak[0]
if len(pids) > 1:  # the decoding workers' memory is theirs: sample the whole tree
    threading.Thread(target=sample, daemon=True).start()
report = adapter.predict_items(items, batch_size=batch, save_report=False)
stop.set()
growth = peak[0] - base if len(pids) > 1 else hwm_kib() - before
print("RESULT", json.dumps({"growth_mib": growth / 1024, "ok": report.succeeded, "failed": report.failed,
      "errors": [f.error for f in report.failures]}), flush=True)
"""


def png(side: int, kind: str, value: int = 0) -> bytes:
    """A flat ``side`` x ``side`` PNG: 8-bit RGB (``rgb8``) or 16-bit grey (``grey16``, Pillow's mode ``I;16``)."""
    import io

    from PIL import Image

    if kind == "rgb8":
        img = Image.new("RGB", (side, side), (90, 140, value % 256))
    else:
        img = Image.fromarray(np.full((side, side), 40000 - value, dtype=np.uint16))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def build(store: Path, images: list[bytes]) -> str:
    """A local store at ``store`` holding ``images`` as dataset ``big``, and a model ``sink``; its URI."""
    from adapter_base import Registry

    if not (store / ".built").exists():
        with Registry.open(str(store)) as registry:
            ds = registry.create_dataset("big")
            for i, data in enumerate(images):
                registry.add_item(ds, f"{i}.png", data)
            registry.create_model("sink")
        (store / ".built").write_text(str(len(images)))
    return str(store)


def peak_growth(store: str, configuration: dict, *, batch: int = 4, sleep: float = 3.0, code: Path = REPO, timeout: float = 1800) -> dict:
    """Peak memory growth (MiB) of a fresh process predicting every image of ``store`` with the default loader
    and a slow model: its ``VmHWM``, or with decoding worker processes, its pages, theirs and the shared
    memory blocks, sampled every few milliseconds. ``{"growth_mib", "ok", "failed", "errors"}``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MODEL_ADAPTER_HOME": str(Path(store).parent / "home"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, store, json.dumps(configuration), str(batch), str(sleep)],
        env=env, cwd=str(code), capture_output=True, text=True, timeout=timeout,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
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
            store = build(a.root / f"{kind}-{a.side}-{count}", [png(a.side, kind)] * count)
            r = peak_growth(store, {"prepared_bytes_budget": budget, "decode_processes": a.processes}, code=a.code)
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
