"""The component catalog: every component function, and building them all for one image."""

from __future__ import annotations

from dataclasses import dataclass

from kfp.dsl.base_component import BaseComponent

from ._factory import default_image, make_component
from .evaluate_model import evaluate_model as evaluate_model_func
from .load_from_model import load_from_model as load_from_model_func
from .merge_reports import merge_reports as merge_reports_func
from .predict_items import predict_items as predict_items_func
from .promote import promote as promote_func
from .record_status import record_status as record_status_func
from .save_to_model import save_to_model as save_to_model_func
from .split_dataset import split_dataset as split_dataset_func
from .train_model import train_model as train_model_func


@dataclass(frozen=True)
class ComponentSet:
    """Every component, built for one base image."""

    image: str
    load_from_model: BaseComponent
    train_model: BaseComponent
    save_to_model: BaseComponent
    evaluate_model: BaseComponent
    promote: BaseComponent
    record_status: BaseComponent
    split_dataset: BaseComponent
    predict_items: BaseComponent
    merge_reports: BaseComponent


FUNCTIONS = {
    "load_from_model": load_from_model_func,
    "train_model": train_model_func,
    "save_to_model": save_to_model_func,
    "evaluate_model": evaluate_model_func,
    "promote": promote_func,
    "record_status": record_status_func,
    "split_dataset": split_dataset_func,
    "predict_items": predict_items_func,
    "merge_reports": merge_reports_func,
}


def build_components(image: str | None = None) -> ComponentSet:
    """Every component with ``image`` as its base image (default: ``$MODEL_ADAPTER_IMAGE`` or ``model-adapter:dev``)."""
    image = image or default_image()
    return ComponentSet(image=image, **{name: make_component(func, image) for name, func in FUNCTIONS.items()})
