"""Shared builders of the pipeline tests: a small digits dataset and model in a given store."""

from __future__ import annotations

from dataclasses import dataclass

from adapter_base import Registry
from examples.digits.dataset import import_digits

ADAPTER = "examples.digits.adapter:DigitsAdapter"
DATASET = "digits"
MODEL = "digits-mlp"
#: Small enough that each DAG runs in seconds, big enough to learn (test accuracy ~0.95).
LIMIT = 400
EPOCHS = 10
#: Not an image: PIL cannot decode it, so the item fails at the ``prepare`` stage.
CORRUPT_BYTES = b"\x89PNG\r\n\x1a\n" + b"this is not a png at all" * 4


@dataclass
class Digits:
    store_uri: str
    dataset_id: str
    model_id: str
    corrupt_item_id: str | None = None


def make_digits(store_uri: str, *, limit: int = LIMIT, epochs: int = EPOCHS, corrupt: bool = False, train: bool = False) -> Digits:
    """Import ``limit`` digits, create the model (``epochs`` epochs); optionally add a corrupt item / train v1 in-process."""
    with Registry.open(store_uri) as registry:
        ds = import_digits(registry, DATASET, limit=limit)
        model = registry.create_model(
            MODEL,
            adapter=ADAPTER,
            labels=ds.labels,
            dataset_id=ds.id,
            subsets={"train": {"subset": "train"}, "validation": {"subset": "validation"}},
            configuration={"epochs": epochs},
        )
        corrupt_id = None
        if corrupt:
            item = registry.add_item(ds, "test/corrupt.png", CORRUPT_BYTES, mimetype="image/png", subsets=["test"])
            corrupt_id = item.id
        if train:
            from examples.digits.adapter import DigitsAdapter

            DigitsAdapter(registry=registry).train_model(model)
        return Digits(store_uri=store_uri, dataset_id=ds.id, model_id=model.id, corrupt_item_id=corrupt_id)


def train_arguments(store_uri: str, **overrides) -> dict:
    args = {
        "adapter": ADAPTER,
        "model": MODEL,
        "dataset": DATASET,
        "store_uri": store_uri,
        "test_filters": {"subset": "test"},
        "metric": "accuracy",
        "threshold": 0.5,
        "alias": "production",
    }
    args.update(overrides)
    return args


def predict_arguments(store_uri: str, **overrides) -> dict:
    args = {"adapter": ADAPTER, "model": MODEL, "dataset": DATASET, "store_uri": store_uri, "num_shards": 3}
    args.update(overrides)
    return args
