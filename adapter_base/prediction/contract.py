"""Calling the adapter's ``prepare_item_func`` and ``predict`` (or ``embed``), and checking what they return.

A broken promise (``None`` from ``prepare_item_func``, the wrong number or type of
results, an annotation that does not validate, a ``BaseException`` such as ``sys.exit``)
becomes an ``AdapterContractError`` or ``ValidationError`` for the items concerned; a call
past its timeout, a ``TimeoutError``.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..entities import Annotation, AnnotationCollection, Embedding, Item, Model, ModelInfo, PredictionSet
from ..errors import AdapterContractError, ValidationError
from ..hook_calls import call_hook
from ..hooks import AdapterHooks, default_input
from ..media import Reserve, decode_image
from ..watchdog import call_with_deadline


def prepare_input(
    adapter: AdapterHooks, item: Item, *, image_decoder: Callable[..., Any] | None = None, reserve: Reserve | None = None
) -> Any:
    """``prepare_item_func(item)``, which must not be None.

    With ``image_decoder`` or ``reserve``, for an adapter that keeps the default ``prepare_item_func``:
    the same preparation, images decoded by ``image_decoder`` (in worker processes, say; else
    ``decode_image``), each reserving what its decoding holds with ``reserve`` first.
    """
    if image_decoder is not None or reserve is not None:
        return default_input(adapter, item, image_decoder or decode_image, reserve)
    prepared = call_hook(adapter, "prepare_item_func", item)
    if prepared is None:
        raise AdapterContractError(f"prepare_item_func returned None for item {item.id}")
    return prepared


def call_predict(
    adapter: AdapterHooks,
    inputs: list[Any],
    items: Sequence[Item],
    timeout_s: float | None,
    hook: str = "predict",
    on_cpu: Callable[[float, float], None] | None = None,
) -> Any:
    """``predict(inputs, items=...)`` (or the hook named ``hook``, e.g. ``embed``), given its own copies of
    ``items``; a ``TimeoutError`` after ``timeout_s``. ``on_cpu``: told, once the call returns, the CPU
    seconds it spent on the thread it ran on and the seconds it lasted.

    The copies mean sorting, popping or editing them cannot change which item a result
    is stored on.
    """
    given = [copy.copy(it) for it in items]

    def run() -> Any:
        cpu, wall = time.thread_time(), time.monotonic()
        try:
            return call_hook(adapter, hook, inputs, items=given)
        finally:
            if on_cpu is not None:
                on_cpu(time.thread_time() - cpu, time.monotonic() - wall)

    if not timeout_s:
        return run()
    return call_with_deadline(run, float(timeout_s), hook, f"{hook} did not return within predict_timeout_s={timeout_s}")


def check_results(results: Any, count: int) -> AdapterContractError | None:
    """Why ``results`` is not one result per item of a batch of ``count``, or None when it is."""
    if not isinstance(results, Sequence) or isinstance(results, (str, bytes)):
        return AdapterContractError(f"predict returned a {type(results).__name__}, expected a list with one result per item")
    if len(results) != count:
        return AdapterContractError(
            f"predict returned {len(results)} results for a batch of {count}: it must return one per item, in the order given"
        )
    return None


def stamp(model: Model, run_id: str, item: Item, result: Any) -> PredictionSet:
    """``item``'s prediction set from one ``predict`` result, every annotation stamped with ``model``.

    Each stamped annotation is validated here, the one time the engine validates it: the
    writer stores the set without validating it again.
    """
    if isinstance(result, AnnotationCollection):
        anns = list(result.annotations)
    elif isinstance(result, list) and all(isinstance(a, Annotation) for a in result):
        anns = result
    else:
        raise AdapterContractError(f"predict result is a {type(result).__name__}, expected an AnnotationCollection or a list of Annotation")
    stamped = []
    for n, ann in enumerate(anns):
        if not isinstance(ann, Annotation):
            raise AdapterContractError(f"result annotation {n} is a {type(ann).__name__}, not an Annotation")
        info = ModelInfo(
            confidence=1.0 if ann.model is None else ann.model.confidence,
            model_id=model.id,
            model_name=model.name,
            model_version=model.version,
        )
        new = ann.with_model(info)
        try:
            new.validate()
        except ValidationError as exc:
            raise ValidationError(f"prediction {n}", exc.field, exc.message) from None
        stamped.append(new)
    return PredictionSet(
        item_id=item.id,
        model_id=model.id,
        model_name=model.name,
        model_version=model.version,
        annotations=stamped,
        run_id=run_id,
    )


def embedding_of(model: Model, run_id: str, item: Item, result: Any) -> Embedding:
    """``item``'s embedding from one ``embed`` result (a 1-D sequence or array of finite numbers), validated."""
    try:
        vector = np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError):
        raise AdapterContractError(f"embed result is a {type(result).__name__}, expected a vector of numbers") from None
    if vector.ndim != 1 or vector.size == 0:
        raise AdapterContractError(f"embed result has shape {vector.shape}, expected one non-empty vector per item")
    embedding = Embedding(item_id=item.id, model_id=model.id, model_name=model.name, model_version=model.version, vector=vector.tolist(), run_id=run_id)
    embedding.validate()
    return embedding
