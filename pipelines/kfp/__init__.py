"""KFP v2 pipelines over the components: train -> commit -> evaluate (with a promotion gate) and batched prediction.

Build a pipeline for an image and a compute profile, then compile it, run it under
``kfp.local`` or submit it to a KFP API (see ``docs/pipelines.md``)::

    from pipelines.kfp import build_pipeline, compile_pipeline
    compile_pipeline("predict", "predict.yaml", image="registry.example.com/my-adapters:1.0", profile="gpu")

(This package is named after the backend it builds for; ``import kfp`` inside it is still the SDK.)
"""

from .build import build_pipeline, compile_pipeline

__all__ = ["build_pipeline", "compile_pipeline"]
