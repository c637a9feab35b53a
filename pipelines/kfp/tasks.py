"""KFP task settings: a compute profile's resources and placement, and the store's env, on a ``PipelineTask``."""

from __future__ import annotations

from typing import Any

from ..compute import SCRATCH_MOUNT_PATH, SCRATCH_VOLUME, STEP_DEFAULTS, ComputeProfile, get_profile
from ..store_env import STORE_CONFIG_KEYS, STORE_CONFIG_MAP, STORE_SECRET, STORE_SECRET_KEYS


def apply_profile(task: Any, profile: str | ComputeProfile) -> Any:
    """Apply a profile to a ``PipelineTask`` (resources in the pipeline spec, placement via kfp-kubernetes)."""
    from kfp import kubernetes

    p = get_profile(profile)
    if p.uses_accelerator:
        task.set_accelerator_type(p.accelerator_type).set_accelerator_limit(p.accelerator_count)
    if p.cpu_request:
        task.set_cpu_request(p.cpu_request)
    if p.memory_request:
        task.set_memory_request(p.memory_request)
    if p.cpu_limit:
        task.set_cpu_limit(p.cpu_limit)
    if p.memory_limit:
        task.set_memory_limit(p.memory_limit)
    for key, value in p.node_selector.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for t in p.tolerations:
        kubernetes.add_toleration(
            task,
            key=t.get("key"),
            operator=t.get("operator"),
            value=t.get("value"),
            effect=t.get("effect"),
            toleration_seconds=t.get("toleration_seconds"),
        )
    if p.ephemeral_storage:
        kubernetes.empty_dir_mount(task, volume_name=SCRATCH_VOLUME, mount_path=SCRATCH_MOUNT_PATH, size_limit=p.ephemeral_storage)
    return task


def use_store_env(task: Any) -> Any:
    """Give ``task`` the store settings (ConfigMap) and credentials (Secret) as env variables."""
    from kfp import kubernetes

    kubernetes.use_config_map_as_env(task, config_map_name=STORE_CONFIG_MAP, config_map_key_to_env={k: k for k in STORE_CONFIG_KEYS})
    kubernetes.use_secret_as_env(task, secret_name=STORE_SECRET, secret_key_to_env={k: k for k in STORE_SECRET_KEYS})
    return task


def set_step_defaults(task: Any) -> Any:
    """Small CPU / memory requests and limits (``STEP_DEFAULTS``), which ``apply_profile`` then overrides where a
    profile sets its own: a namespace with a ResourceQuota and no LimitRange refuses a pod without them."""
    task.set_cpu_request(STEP_DEFAULTS.cpu_request).set_cpu_limit(STEP_DEFAULTS.cpu_limit)
    task.set_memory_request(STEP_DEFAULTS.memory_request).set_memory_limit(STEP_DEFAULTS.memory_limit)
    return task


def store_step(task: Any, display_name: str | None = None) -> Any:
    """A step that reads or writes the store: store env, default requests and limits, caching off (its inputs do not pin its result)."""
    use_store_env(task)
    set_step_defaults(task)
    task.set_caching_options(enable_caching=False)
    if display_name:
        task.set_display_name(display_name)
    return task
