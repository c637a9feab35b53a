"""The two pipelines and their steps, as every backend builds them (KFP in ``pipelines.kfp``, Argo in ``pipelines.argo``).

A step has one name from its component (``components/<name>.py``) and its function
(``adapter_base/steps``) to ``model-adapter step <name>`` and the docs.
"""

from __future__ import annotations

PIPELINE_KINDS: tuple[str, ...] = ("train", "predict")

KIND_HELP: dict[str, str] = {
    "train": "load -> train -> commit -> evaluate, promote when a metric reaches a threshold",
    "predict": "split a dataset into shards, predict them side by side, merge the reports",
}
