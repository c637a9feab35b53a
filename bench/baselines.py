"""What a user would write instead of ``predict_dataset``, on the same store, items, model and writes.

Each loop lists the dataset, reads every item's bytes from the store, decodes them the way
the framework's default ``prepare_item_func`` does (``decode_image``: PNG -> RGB array),
calls the adapter's ``predict`` on batches and writes one JSON prediction set per item
(the engine's ``stamp``, stored with ``Registry.put_predictions``):

- ``dataloader_loop``: a plain PyTorch loop: a map-style ``Dataset`` whose ``__getitem__``
  reads an item's bytes from the store and decodes them, ``DataLoader(num_workers=2)``
  (worker processes, tensors in shared memory, default collate), the model in the main
  process, writes on a ``ThreadPoolExecutor()`` (its default size);
- ``naive_loop``: read, decode, predict, write, one item after the other, a batch at a time;
- ``ray_data``: Ray Data ``from_items -> map (read + decode) -> map_batches (an actor holding
  the model) -> map_batches (write)``, on a Ray instance started beforehand ("warm").

Each loop opens its own store client where it runs (a worker process or a Ray worker), from
the store's URI, as a user would.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from adapter_base import Model, Registry
from adapter_base.media import decode_image
from adapter_base.prediction.contract import stamp
from adapter_base.storage import open_store

from .models import CostModelAdapter

# PIL's arrays are read-only and torch.from_numpy warns about it once per item; the batch is
# collated into a new tensor anyway. Filtered by message, in this process and the DataLoader's forks.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)

_REGISTRIES: dict[tuple[int, str], Registry] = {}


def registry_for(uri: str) -> Registry:
    """One registry per process and store URI (a forked DataLoader worker or a Ray worker opens its own)."""
    key = (os.getpid(), uri)
    if key not in _REGISTRIES:
        _REGISTRIES[key] = Registry(open_store(uri))
    return _REGISTRIES[key]


# ----------------------------------------------------------------------------- PyTorch DataLoader
class StoreImages:
    """A map-style ``torch.utils.data.Dataset``: item ``i``'s bytes from the store, decoded to a uint8 tensor."""

    def __init__(self, uri: str, items: list[Any]) -> None:
        self.uri = uri
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        import torch

        item = self.items[i]
        return torch.from_numpy(decode_image(registry_for(self.uri).read_item(item)))


def dataloader_loop(adapter: CostModelAdapter, uri: str, dataset_id: str, batch_size: int, *, workers: int = 2) -> int:
    from torch.utils.data import DataLoader

    registry, model = adapter.registry, adapter.model_entity
    assert model is not None
    items = list(registry.iter_items(dataset_id))
    loader = DataLoader(StoreImages(uri, items), batch_size=batch_size, num_workers=workers)
    futures = []
    with ThreadPoolExecutor() as pool:
        for b, batch in enumerate(loader):
            chunk = items[b * batch_size : (b + 1) * batch_size]
            outs = adapter.predict(list(batch.numpy()), items=chunk)
            for it, coll in zip(chunk, outs):
                futures.append(pool.submit(registry.put_predictions, stamp(model, "dataloader", it, coll), it.dataset_id))
        for f in futures:
            f.result()
    return len(futures)


# ----------------------------------------------------------------------------- the naive loop
def naive_loop(adapter: CostModelAdapter, dataset_id: str, batch_size: int) -> int:
    registry, model = adapter.registry, adapter.model_entity
    assert model is not None
    done = 0
    batch: list[Any] = []
    batch_items: list[Any] = []

    def flush() -> int:
        outs = adapter.predict(batch, items=batch_items)
        for it, coll in zip(batch_items, outs):
            registry.put_predictions(stamp(model, "naive", it, coll), it.dataset_id)
        n = len(batch_items)
        batch.clear()
        batch_items.clear()
        return n

    for item in registry.iter_items(dataset_id):
        batch.append(decode_image(registry.read_item(item)))
        batch_items.append(item)
        if len(batch) == batch_size:
            done += flush()
    if batch:
        done += flush()
    return done


# ----------------------------------------------------------------------------- Ray Data
def start_ray() -> "RayRunner | str":
    """A started ``RayRunner``, or why Ray Data cannot run here."""
    try:
        import ray.data  # noqa: F401
    except ImportError as exc:
        return f"not installed ({exc}): pip install -e '.[bench]'"
    try:
        return RayRunner()
    except Exception as exc:  # noqa: BLE001 - reported in the bench output instead of its rows
        return f"could not start ({type(exc).__name__}: {exc})"


class RayRunner:
    """A Ray instance started once (not timed: "warm"), and the Ray Data pipeline run on it."""

    def __init__(self, cpus: int | None = None) -> None:
        import ray

        self.ray = ray
        env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "MODEL_ADAPTER_"))}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_repo()), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            num_cpus=cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env},
            ignore_reinit_error=True,
        )
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False

    def run(self, adapter: CostModelAdapter, uri: str, dataset_id: str, batch_size: int) -> int:
        ray = self.ray
        registry, model = adapter.registry, adapter.model_entity
        assert model is not None
        rows = [{"item": it.to_json()} for it in registry.iter_items(dataset_id)]
        ds = (
            ray.data.from_items(rows)
            .map(_ray_read, fn_args=(uri,), num_cpus=0.5)  # its own tasks (not fused into the model's actor): decoding runs beside predict
            .map_batches(_RayPredict, fn_constructor_args=(uri, model.to_dict(), dict(adapter.configuration)), batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=1))
            .map_batches(_ray_write, fn_args=(uri,), batch_size=4 * batch_size)
        )
        n = sum(len(b["n"]) for b in ds.iter_batches(batch_size=None))
        self.last_stats = ds.stats()
        return n

    def close(self) -> None:
        self.ray.shutdown()


def _repo() -> Any:
    from .common import REPO

    return REPO


def _ray_read(row: dict[str, Any], uri: str) -> dict[str, Any]:
    """``map`` function: the item's bytes from the store, decoded."""
    from adapter_base import Item

    item = Item.from_json(row["item"])
    return {"item": row["item"], "image": decode_image(registry_for(uri).read_item(item))}


class _RayPredict:
    """``map_batches`` actor: holds the model, returns each item's stamped prediction set as JSON."""

    def __init__(self, uri: str, model: dict[str, Any], configuration: dict[str, Any]) -> None:
        self.model = Model.from_dict(model)
        self.adapter = CostModelAdapter(registry=registry_for(uri), configuration=configuration)
        self.adapter.load("")

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from adapter_base import Item

        items = [Item.from_json(d) for d in batch["item"]]
        outs = self.adapter.predict(list(batch["image"]), items=items)
        return {
            "dataset_id": [it.dataset_id for it in items],
            "pset": [stamp(self.model, "ray", it, c).to_json() for it, c in zip(items, outs)],
        }


def _ray_write(batch: dict[str, Any], uri: str) -> dict[str, Any]:
    from adapter_base import PredictionSet

    registry = registry_for(uri)
    for ds_id, text in zip(batch["dataset_id"], batch["pset"]):
        registry.put_predictions(PredictionSet.from_json(text), ds_id)
    return {"n": list(batch["dataset_id"])}
