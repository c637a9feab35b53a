"""Argo Workflows: the train and predict pipelines as WorkflowTemplates and CronWorkflows (built with Hera).

Every step runs ``model-adapter step NAME`` in the project image; see ``docs/pipelines.md``.
Nothing here imports hera at module import time.
"""
