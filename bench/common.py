"""Shared helpers: timing with CPU accounting, medians, a SeaweedFS server, stores, images."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BENCH_BUCKET = "model-adapter-bench"


# ----------------------------------------------------------------------------- timing
def tree_cpu(proc: Any) -> float:
    """User + system CPU seconds of ``proc`` and its children (psutil), 0 when unavailable: the live ones, and
    those that ended and were waited for (a pool of worker processes replaced during a run keeps counting)."""
    if proc is None:
        return 0.0
    try:
        t = proc.cpu_times()
        total = t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
        for p in proc.children(recursive=True):
            try:
                t = p.cpu_times()
            except Exception:  # noqa: BLE001 - it ended meanwhile
                continue
            total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
        return total
    except Exception:  # noqa: BLE001 - a process that went away counts as nothing
        return 0.0


def machine_busy_s() -> float:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``), 0 if unknown."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """One timed run: wall seconds, CPU seconds of this process, of the store server and of
    everything else on the machine (other people's work on a shared machine)."""

    wall_s: float
    cpu_s: float
    server_cpu_s: float
    other_cpu_s: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "server_cpu_s": round(self.server_cpu_s, 4),
            "other_cpu_s": round(self.other_cpu_s, 4),
        }


class Meter:
    """Times a callable, with the CPU time this process and ``server_pid``'s tree spent on it."""

    def __init__(self, server_pid: int | None = None) -> None:
        import psutil

        self._me = psutil.Process()
        self._server = psutil.Process(server_pid) if server_pid else None

    def measure(self, fn: Callable[[], Any]) -> tuple[Sample, Any]:
        c0, s0, m0 = self._me.cpu_times(), tree_cpu(self._server), machine_busy_s()
        t0 = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - t0
        c1, s1, m1 = self._me.cpu_times(), tree_cpu(self._server), machine_busy_s()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        other = max(0.0, (m1 - m0) - cpu - (s1 - s0))
        return Sample(wall, cpu, s1 - s0, other), result


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


#: Interleaved repeats of every measure by default (single runs swing by +-20 % on a shared 2-CPU machine);
#: each row reports their median with the min-max (``spread``).
REPEATS = 5


def spread(values: list[float], digits: int = 1) -> dict[str, float]:
    """The median of ``values`` with their min and max: how every bench row reports its repeats."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits), "max": round(max(values), digits)}


def rate_spread(amount: float, seconds: list[float], digits: int = 1) -> dict[str, float]:
    """``spread`` of ``amount`` per second over each repeat's ``seconds`` (items/s, MiB/s)."""
    return spread([amount / s for s in seconds], digits)


def figure(value: float | dict[str, float]) -> float:
    """The headline of a bench figure: a plain number, or the median of a ``spread``."""
    return float(value["median"]) if isinstance(value, dict) else float(value)


def fmt_spread(value: float | dict[str, float], fmt: str = ",.0f") -> str:
    """``median (min-max)`` of a ``spread``; the median alone for one repeat or a plain number (results written before spreads)."""
    if not isinstance(value, dict):
        return format(value, fmt)
    if value["min"] == value["max"]:
        return format(value["median"], fmt)
    return f"{value['median']:{fmt}} ({value['min']:{fmt}}-{value['max']:{fmt}})"


def machine_info() -> dict[str, Any]:
    """CPU count, memory and load, and the library versions that matter for the figures."""
    import platform

    import PIL
    import psutil

    import minio

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "minio": minio.__version__,
        "platform": platform.platform(),
    }
    try:
        info["cpu_model"] = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return info


def gpu_status() -> dict[str, Any]:
    """Whether a CUDA GPU is here for ``bench/torch_gpu.py`` (target: predict_items >= 0.9x the raw torch loop on it)."""
    try:
        import torch
    except ImportError:
        return {"cuda": False, "status": "not run on a GPU: torch is not installed"}
    if not torch.cuda.is_available():
        return {
            "cuda": False,
            "status": "not run on a GPU: no CUDA device on this machine (no GPU machine was lent to this run); "
            "bench/torch_gpu.py is ready: python -m bench.torch_gpu --device cuda",
        }
    return {"cuda": True, "status": f"CUDA device {torch.cuda.get_device_name()}: run python -m bench.torch_gpu --device cuda", "device": torch.cuda.get_device_name()}


# ----------------------------------------------------------------------------- images
#: Image formats the benches can make their items in, and each one's file extension.
IMAGE_FORMATS = {"png": "png", "jpeg": "jpg"}


def synthetic_images(count: int, size: int = 256, seed: int = 0, *, fmt: str = "png") -> list[bytes]:
    """``count`` distinct ``size``x``size`` RGB images in ``fmt`` (``IMAGE_FORMATS``; JPEG at quality 90): gradients
    with noise (a PNG ~120 KB at 256, ~1.6 ms to decode)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    out = []
    for i in range(count):
        base = np.stack([(x + 7 * i) % 256, (2 * y + 3 * i) % 256, ((x + y) // 2 + 11 * i) % 256], -1).astype(np.int16)
        img = np.clip(base + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt.upper(), **({"quality": 90} if fmt == "jpeg" else {}))
        out.append(buf.getvalue())
    return out


# ----------------------------------------------------------------------------- S3 server
def _import_seaweed() -> Any:
    tests_dir = str(REPO / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from support.seaweed import SeaweedServer  # the same server the tests use

    return SeaweedServer


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under the repository's ``.bench/`` for one command-line bench run, removed afterwards."""
    (REPO / ".bench").mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=REPO / ".bench"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def seaweed_server(workdir: Path) -> Iterator[Any]:
    """A running SeaweedFS (``weed mini``) with the bench bucket, and the ``AWS_*`` env set for it."""
    SeaweedServer = _import_seaweed()
    server = SeaweedServer(Path(tempfile.mkdtemp(prefix="seaweed-", dir=workdir)))
    server.start()
    saved = {k: os.environ.get(k) for k in (*server.env(), "MODEL_ADAPTER_S3_PATH_STYLE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3")}
    try:
        server.make_bucket(BENCH_BUCKET)
        os.environ.update(server.env())
        os.environ["MODEL_ADAPTER_S3_PATH_STYLE"] = "true"
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_ENDPOINT_URL_S3", None)
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def s3_uri() -> str:
    """A fresh prefix in the bench bucket."""
    return f"s3://{BENCH_BUCKET}/b-{uuid.uuid4().hex[:10]}"


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"
