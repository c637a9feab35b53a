"""The PyTorch example (``examples/torch_cnn``): ``predict_items`` against a plain PyTorch inference loop.

Same items, same network, same device. The plain loop is what one writes by hand: a
``torch.utils.data.DataLoader`` (worker processes, pinned memory on CUDA) that reads each
item from the store and transforms it, the forward pass under ``inference_mode``, then
the predictions written to the store item by item (``plain_loop``); ``plain_no_write``
skips the writing, an upper bound for the loop. Ready for a GPU machine:

    pip install -e '.[torch]'   # torch==2.13.0
    python -m bench.torch_gpu --device cuda --n 20000 --image-size 224 --input-size 224 --batch-size 128

It runs on CPU as well (``make bench`` runs a small CPU pass when torch is installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .common import REPEATS, fmt_spread, median, rate_spread

MEASURES = ("plain_no_write", "plain_loop", "predict_items")


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


class _ItemsDataset:
    """Items read from the store and transformed exactly as ``prepare_item_func`` does."""

    def __init__(self, adapter: Any, items: list[Any]) -> None:
        self.adapter = adapter
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        import torch

        return torch.from_numpy(self.adapter.prepare_item_func(self.items[i]))


def plain_loop(adapter: Any, items: list[Any], batch_size: int, workers: int, write: bool) -> int:
    import torch
    from torch.utils.data import DataLoader

    from adapter_base import AnnotationCollection, ModelInfo, PredictionSet

    model = adapter.model_entity
    dev = adapter.torch_device
    loader = DataLoader(
        _ItemsDataset(adapter, items), batch_size=batch_size, num_workers=workers, pin_memory=dev.type == "cuda",
        persistent_workers=False, prefetch_factor=4 if workers else None,
    )
    done = 0
    with torch.inference_mode():
        for b, x in enumerate(loader):
            x = x.to(dev, non_blocking=True)
            probs = torch.softmax(adapter.net(x), dim=1).float().cpu().numpy()
            if write:
                for j, row in enumerate(probs):
                    item = items[b * batch_size + j]
                    best = int(row.argmax())
                    coll = AnnotationCollection()
                    ann = coll.add_classification(adapter.labels[best], confidence=float(row[best]))
                    ann.model = ModelInfo(confidence=float(row[best]), model_id=model.id, model_name=model.name, model_version=model.version)
                    adapter.registry.put_predictions(
                        PredictionSet(item_id=item.id, model_id=model.id, model_name=model.name, model_version=model.version, annotations=coll.annotations),
                        item.dataset_id,
                    )
            done += len(probs)
    return done


def run(
    workdir: Path,
    *,
    n: int = 512,
    repeats: int = REPEATS,
    batch_size: int = 64,
    image_size: int = 128,
    input_size: int = 64,
    device: str = "auto",
    workers: int | None = None,
    store: str | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    import torch

    from adapter_base import Registry
    from adapter_base.storage import open_store
    from examples.torch_cnn.adapter import TorchCNNAdapter
    from examples.torch_cnn.dataset import make_colours

    workers = (min(4, os.cpu_count() or 1)) if workers is None else workers
    uri = store or tempfile.mkdtemp(prefix="torch-store-", dir=workdir)
    registry = Registry(open_store(uri))
    t = time.perf_counter()
    ds = make_colours(registry, f"torch-bench-{os.getpid()}", n, size=image_size, splits={"test": 1.0})
    setup = time.perf_counter() - t
    items = list(registry.iter_items(ds))
    model = registry.create_model(
        f"torch-cnn-{os.getpid()}", labels=ds.labels,
        configuration={"input_size": input_size, "device": device, "batch_size": batch_size},
    )
    adapter = TorchCNNAdapter(registry=registry)
    adapter.load_from_model(model)
    runs: dict[str, Callable[[], int]] = {
        "plain_no_write": lambda: plain_loop(adapter, items, batch_size, workers, write=False),
        "plain_loop": lambda: plain_loop(adapter, items, batch_size, workers, write=True),
        "predict_items": lambda: adapter.predict_items(items, batch_size=batch_size, save_report=False).succeeded,
    }
    runs["predict_items"]()  # warm-up (cuDNN autotuning, allocator, connections)
    samples: dict[str, list[float]] = {m: [] for m in MEASURES}
    for r in range(repeats):
        order = MEASURES[r % len(MEASURES) :] + MEASURES[: r % len(MEASURES)]
        for m in order:
            if adapter.torch_device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            count = runs[m]()
            if adapter.torch_device.type == "cuda":
                torch.cuda.synchronize()
            samples[m].append(time.perf_counter() - t)
            if count != n:
                raise RuntimeError(f"{m} handled {count} of {n} items")
    registry.close()
    wall = {m: median(v) for m, v in samples.items()}
    out = {
        "device": str(adapter.torch_device) + (f" ({torch.cuda.get_device_name()})" if adapter.torch_device.type == "cuda" else ""),
        "torch": torch.__version__,
        "n": n,
        "batch_size": batch_size,
        "image_size": image_size,
        "input_size": input_size,
        "loader_workers": workers,
        "setup_s": round(setup, 2),
        "median_s": {m: round(v, 4) for m, v in wall.items()},
        "items_per_s": {m: rate_spread(n, v) for m, v in samples.items()},
        "ratio": round(wall["plain_loop"] / wall["predict_items"], 3),
        "ratio_vs_no_write": round(wall["plain_no_write"] / wall["predict_items"], 3),
        "samples": samples,
    }
    progress(
        f"  [{out['device']}] plain loop {fmt_spread(out['items_per_s']['plain_loop'])}/s (no write {fmt_spread(out['items_per_s']['plain_no_write'])}/s), "
        f"predict_items {fmt_spread(out['items_per_s']['predict_items'])}/s: {out['ratio']:.2f}x the plain loop"
    )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.torch_gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=REPEATS)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=128, help="stored PNG size")
    ap.add_argument("--input-size", type=int, default=64, help="network input size (items are resized to it)")
    ap.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader worker processes of the plain loop (default min(4, CPUs))")
    ap.add_argument("--store", default=None, help="store URI (default: a temp local store)")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    a = ap.parse_args(argv)
    from .models import limit_blas_threads

    with tempfile.TemporaryDirectory(prefix="torch-bench-") as tmp:
        os.environ.setdefault("MODEL_ADAPTER_HOME", str(Path(tmp) / "home"))
        limiter = limit_blas_threads(1)  # noqa: F841 - the same settings as python -m bench
        out = run(Path(tmp), n=a.n, repeats=a.repeats, batch_size=a.batch_size, image_size=a.image_size, input_size=a.input_size, device=a.device, workers=a.workers, store=a.store)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "samples"}, indent=1))


if __name__ == "__main__":
    main()
