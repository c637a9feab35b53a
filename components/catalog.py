"""The component catalog: every component function, and building them all for one image."""

from __future__ import annotations

from dataclasses import dataclass

from kfp.dsl.base_component import BaseComponent

from ._factory import default_image, make_component
from .commit import commit
from .evaluate import evaluate
from .finalize import finalize
from .load import load
from .merge_reports import merge_reports
from .predict_shard import predict_shard
from .promote import promote
from .split_dataset import split_dataset
from .train import train


@dataclass(frozen=True)
class ComponentSet:
    """Every component, built for one base image (one field per step, named like its module)."""

    image: str
    load: BaseComponent
    train: BaseComponent
    commit: BaseComponent
    evaluate: BaseComponent
    promote: BaseComponent
    finalize: BaseComponent
    split_dataset: BaseComponent
    predict_shard: BaseComponent
    merge_reports: BaseComponent


FUNCTIONS = {
    "load": load,
    "train": train,
    "commit": commit,
    "evaluate": evaluate,
    "promote": promote,
    "finalize": finalize,
    "split_dataset": split_dataset,
    "predict_shard": predict_shard,
    "merge_reports": merge_reports,
}


def build_components(image: str | None = None) -> ComponentSet:
    """Every component with ``image`` as its base image (default: ``$MODEL_ADAPTER_IMAGE`` or ``model-adapter:dev``)."""
    image = image or default_image()
    return ComponentSet(image=image, **{name: make_component(func, image) for name, func in FUNCTIONS.items()})
