"""The demo: import digits, create a model, train, save, evaluate, predict, summarise."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from adapter_base import NotFoundError, Registry
from adapter_base.flows.evaluate import EvaluationResult
from adapter_base.prediction import PredictionReport

from .adapter import DigitsAdapter
from .dataset import import_digits

ADAPTER_PATH = "examples.digits.adapter:DigitsAdapter"


@dataclass
class DemoResult:
    """What the demo produced."""

    counts: dict[str, int]
    evaluation: EvaluationResult
    prediction: PredictionReport


def run_demo(
    registry: Registry,
    *,
    dataset_name: str = "digits",
    model_name: str = "digits-mlp",
    fresh: bool = True,
    say: Callable[[str], None] = print,
    epochs: int | None = None,
) -> DemoResult:
    """Run the whole flow on ``registry`` and report each stage through ``say``."""
    t0 = time.monotonic()
    if fresh:
        for getter, deleter, name in (
            (registry.get_model, registry.delete_model, model_name),
            (registry.get_dataset, registry.delete_dataset, dataset_name),
        ):
            try:
                deleter(getter(name))
            except NotFoundError:
                pass
    say(f"store: {registry.store.uri}")
    ds = import_digits(registry, dataset_name)
    counts = registry.count_by_subset(ds, ("train", "validation", "test"))
    del counts["all"]
    say(f"dataset {ds.name} ({ds.id}): " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" items, {sum(counts.values())} in all")

    configuration = {"epochs": epochs} if epochs else {}
    model = registry.create_model(
        model_name,
        adapter=ADAPTER_PATH,
        labels=ds.labels,
        dataset_id=ds.id,
        subsets={"train": {"subset": "train"}, "validation": {"subset": "validation"}},
        configuration=configuration,
    )
    say(f"model {model.name} ({model.id}) created, version {model.version}")

    adapter = DigitsAdapter(registry=registry)

    def progress(i_epoch: int, n_epochs: int, metrics: dict | None) -> None:
        if i_epoch == 0 or (i_epoch + 1) % 10 == 0 or i_epoch + 1 == n_epochs:
            say(f"  epoch {i_epoch + 1:>3}/{n_epochs}: loss {metrics['loss']:.4f}, validation accuracy {metrics['val_accuracy']:.3f}")

    say("training (train_model: load, prepare_data, train, save_to_model):")
    trained = adapter.train_model(model, progress=progress)
    say(f"saved {trained.name} version {trained.version}: {len(trained.artifacts.files)} artifact file(s), status {trained.status}")

    evaluation = adapter.evaluate_model(trained, ds, filters={"subset": "test"})
    s = evaluation.summary
    say(f"evaluation on test ({s['count']} items): accuracy {s['accuracy']:.4f}, macro-F1 {s['macro_f1']:.4f}")
    say(f"evaluation report: {evaluation.report_uri}")

    prediction = adapter.predict_items(registry.iter_items(ds, {"subset": "test"}))
    say(prediction.summary())
    say(f"model id {trained.id}, version {evaluation.model.version}; done in {time.monotonic() - t0:.1f}s")
    return DemoResult(counts=counts, evaluation=evaluation, prediction=prediction)
