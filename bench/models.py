"""The benchmark's adapter: decoded 256x256 RGB images in, a NumPy "detector" whose cost per batch is a parameter.

``device_s_per_item`` adds a wait per item during which the thread holds neither the GIL
nor a CPU: what a model on an accelerator costs the host. With ``work=0`` and a device
time, the adapter stands for a GPU model whose host-side work is only the batch
assembly and the annotations.

``work`` is the number of ``tanh(x @ W)`` layers (``W`` is ``dim x dim`` float32) each item
goes through, so the cost of a batch is ``batch * work * 2 * dim**2`` FLOPs. BLAS is
limited to one thread: the model then stands for one core's worth of work (as a thread
driving an accelerator does) and leaves the other core to fetching, decoding and
writing; with every core in BLAS nothing can overlap on a 2-core machine.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from adapter_base import AnnotationCollection, BaseModelAdapter

LABELS = [f"class-{i}" for i in range(8)]
#: The smallest side of the square images ``CostModelAdapter.features`` can take: it reads ``dim`` (512) values
#: from every 4th pixel of every 4th row, 3 each (14 x 14 x 3 >= 512).
MIN_IMAGE_SIZE = 53


def image_size_error(size: int) -> str | None:
    """Why the bench model cannot take ``size`` x ``size`` images, or None where it can."""
    if size < MIN_IMAGE_SIZE:
        return f"--image-size {size}: the bench model reads 512 values from every 4th pixel, which needs images of {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} or more"
    return None


def limit_blas_threads(n: int = 1) -> Any:
    """Limit BLAS (OpenBLAS/MKL) to ``n`` threads process-wide; returns the limiter (keep it alive)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return threadpool_limits(limits=n, user_api="blas")


class CostModelAdapter(BaseModelAdapter):
    """Prepares items with the framework default (PNG -> H x W x 3 uint8), predicts 5 boxes per item."""

    DEFAULT_CONFIGURATION = {"work": 8, "dim": 512, "boxes": 5, "seed": 0, "device_s_per_item": 0.0}

    def load(self, local_path: str, **kwargs: Any) -> None:
        dim = int(self.configuration["dim"])
        rng = np.random.default_rng(int(self.configuration["seed"]))
        self.weights = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)
        self.model = self.weights

    def save(self, local_path: str, **kwargs: Any) -> None:
        pass  # the bench's artifacts are written by the bench itself

    @property
    def work(self) -> int:
        return int(self.configuration["work"])

    def features(self, batch: list[np.ndarray]) -> np.ndarray:
        dim = self.weights.shape[0]
        rows = []
        for image in batch:
            flat = np.asarray(image)[::4, ::4].reshape(-1)  # a cheap strided view, then dim values
            rows.append(flat[:dim])
        return np.stack(rows).astype(np.float32) / 255.0

    def predict(self, batch: Any, **kwargs: Any) -> list[AnnotationCollection]:
        x = self.features(list(batch))
        for _ in range(self.work):
            x = np.tanh(x @ self.weights)
        device_s = float(self.configuration["device_s_per_item"])
        if device_s:
            # An accelerator's share: the calling thread waits (GIL released, no CPU) as it would
            # for a GPU to finish the batch.
            time.sleep(device_s * len(x))
        k = int(self.configuration["boxes"])
        out = []
        for row in x:
            coll = AnnotationCollection()
            top = np.argsort(row[: len(LABELS) * k])[-k:] if k else []
            for j, idx in enumerate(top):
                conf = float((row[idx] + 1.0) / 2.0)
                left, top_ = float(10 * j), float(5 * j)
                coll.add_box(left, top_, left + 40.0, top_ + 30.0, LABELS[int(idx) % len(LABELS)], confidence=min(1.0, max(0.0, conf)))
            out.append(coll)
        return out


def seconds_per_work_unit(adapter: CostModelAdapter, batch: list[np.ndarray], repeats: int = 5) -> tuple[float, float]:
    """(seconds per item per unit of ``work``, fixed seconds per item) of ``predict``, measured on ``batch``."""
    saved = adapter.configuration["work"]
    try:
        times = {}
        for w in (0, 16):
            adapter.configuration["work"] = w
            adapter.predict(batch)
            best = float("inf")
            for _ in range(repeats):
                t = time.thread_time()  # CPU time: steady on a busy machine
                adapter.predict(batch)
                best = min(best, time.thread_time() - t)
            times[w] = best / len(batch)
        return (times[16] - times[0]) / 16, times[0]
    finally:
        adapter.configuration["work"] = saved
