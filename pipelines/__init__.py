"""The train and predict pipelines over the steps, for two backends side by side.

* ``pipelines.kfp``: KFP v2 pipelines (compile, run under ``kfp.local``, submit and schedule
  on a KFP API); ``model-adapter pipeline ...``.
* ``pipelines.argo``: Argo Workflows WorkflowTemplates and CronWorkflows whose steps run
  ``model-adapter step NAME``; ``model-adapter argo ...``.

Shared by both: the steps (``steps``), the compute profiles (``compute``), the store's
ConfigMap and Secret (``store_env``) and the image reference check (``image_ref``).
Nothing here imports kfp or hera at module import time, so the ``model-adapter`` CLI stays fast.
"""
