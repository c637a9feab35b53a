"""KFP v2 pipelines over the components: train -> save -> evaluate (with a promotion gate) and batched prediction.

Build a pipeline for an image and a compute profile, then compile it, run it under
``kfp.local`` or submit it to a KFP API (see ``docs/pipelines.md``)::

    from pipelines import build_pipeline, compile_pipeline
    compile_pipeline("predict", "predict.yaml", image="registry.example.com/my-adapters:1.0", profile="gpu")

Nothing here imports kfp at module import time, so the ``model-adapter`` CLI stays fast.
"""

from .build import PIPELINE_KINDS, build_pipeline, compile_pipeline

__all__ = ["PIPELINE_KINDS", "build_pipeline", "compile_pipeline"]
