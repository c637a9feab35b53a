"""The adaptive batch size: an out-of-memory error from ``predict`` halves the batch, the items are retried."""

from __future__ import annotations

from typing import Any

import pytest

from adapter_base import AnnotationCollection, BaseModelAdapter


class OutOfMemoryError(RuntimeError):
    """Named like ``torch.cuda.OutOfMemoryError``; raised the way CUDA reports it."""


class FitsAdapter(BaseModelAdapter):
    """Predicts ``ok``; a batch larger than ``fits`` raises ``error(...)``."""

    fits = 3
    error: Any = OutOfMemoryError

    def __init__(self, *a: Any, **kw: Any) -> None:
        self.sizes: list[int] = []
        super().__init__(*a, **kw)

    def load(self, local_path: str, **kwargs: Any) -> None:
        self.model = "fits"

    def prepare_item_func(self, item: Any) -> Any:
        return item.id

    def predict(self, batch: Any, **kwargs: Any) -> list[AnnotationCollection]:
        self.sizes.append(len(batch))
        if len(batch) > self.fits:
            raise self.error("CUDA out of memory. Tried to allocate 2.00 GiB")
        out = []
        for _ in batch:
            c = AnnotationCollection()
            c.add_classification("ok", confidence=0.5)
            out.append(c)
        return out


def _items(registry, n: int) -> list:
    ds = registry.create_dataset("oom")
    return [registry.add_item(ds, f"{i}.txt", b"x", item_id=f"{i:04d}") for i in range(n)]


def _run(registry, adapter_cls, **config):
    items = _items(registry, 21)
    model = registry.create_model("m", configuration=config)
    adapter = adapter_cls(registry=registry)
    adapter.load_from_model(model)
    return adapter, adapter.predict_items(items, batch_size=16)


def test_cuda_style_oom_halves_the_batch_and_records_the_size_that_worked(bench_registry):
    adapter, report = _run(bench_registry, FitsAdapter)
    assert report.ok and report.succeeded == 21 and report.failed == 0
    assert report.batch_size == 16 and report.batch_size_used == 2
    assert adapter.sizes[:4] == [16, 8, 4, 2]
    assert max(adapter.sizes[3:]) <= 2 and sum(adapter.sizes[3:]) == 21, "every item was retried at the smaller size, once"


def test_without_the_option_an_oom_fails_the_batch(bench_registry):
    adapter, report = _run(bench_registry, FitsAdapter, adaptive_batch_size=False)
    assert report.succeeded == 0 and report.failed == 21
    assert all(f.stage == "predict" and "OutOfMemoryError" in f.error for f in report.failures)


def test_a_real_torch_cuda_oom_error_is_recognised(bench_registry):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

    class TorchOOM(FitsAdapter):
        error = torch.cuda.OutOfMemoryError

    adapter, report = _run(bench_registry, TorchOOM)
    assert report.ok and report.batch_size_used == 2
