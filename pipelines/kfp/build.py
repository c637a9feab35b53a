"""Building and compiling the pipelines by name (``train``, ``predict``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..steps import PIPELINE_KINDS


def build_pipeline(kind: str, image: str | None = None, profile: Any = "gpu", **options: Any) -> Any:
    """The pipeline function of ``kind`` (``train`` or ``predict``) for ``image`` and ``profile``.

    ``options`` go to the builder: ``parallelism``, ``retries``, ``backoff`` (predict), ``name``.
    A malformed ``image`` (or ``$MODEL_ADAPTER_IMAGE``) is a ValidationError.
    """
    from ..image_ref import chosen_image

    chosen_image(image, "image")
    if kind == "train":
        from .train import build_train_pipeline

        return build_train_pipeline(image, profile, **options)
    if kind == "predict":
        from .predict import build_predict_pipeline

        return build_predict_pipeline(image, profile, **options)
    raise ValueError(f"unknown pipeline {kind!r}; choose one of: {', '.join(PIPELINE_KINDS)}")


def compile_pipeline(kind: str, path: str | Path, image: str | None = None, profile: Any = "gpu", **options: Any) -> Path:
    """Compile the pipeline of ``kind`` to a YAML file (pipeline spec + Kubernetes platform spec)."""
    from kfp import compiler

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(kind, image, profile, **options), str(path))
    return path

