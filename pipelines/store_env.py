"""How store settings reach the pipeline steps: a ConfigMap and a Secret, as environment variables.

The ConfigMap ``model-adapter-store`` carries where the store is; the Secret
``model-adapter-store-credentials`` carries the S3 keys. kfp-kubernetes maps
them into every step that touches the store, so credentials never appear in
pipeline parameters, the compiled YAML or the logs (only the names do).
"""

from __future__ import annotations

from typing import Any

STORE_CONFIG_MAP = "model-adapter-store"
STORE_CONFIG_KEYS: tuple[str, ...] = ("MODEL_ADAPTER_STORE", "AWS_ENDPOINT_URL", "AWS_REGION", "MODEL_ADAPTER_S3_PATH_STYLE")
STORE_SECRET = "model-adapter-store-credentials"
STORE_SECRET_KEYS: tuple[str, ...] = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def use_store_env(task: Any) -> Any:
    """Give ``task`` the store settings (ConfigMap) and credentials (Secret) as env variables."""
    from kfp import kubernetes

    kubernetes.use_config_map_as_env(task, config_map_name=STORE_CONFIG_MAP, config_map_key_to_env={k: k for k in STORE_CONFIG_KEYS})
    kubernetes.use_secret_as_env(task, secret_name=STORE_SECRET, secret_key_to_env={k: k for k in STORE_SECRET_KEYS})
    return task


def store_step(task: Any, display_name: str | None = None) -> Any:
    """A step that reads or writes the store: store env, caching off (its inputs do not pin its result)."""
    use_store_env(task)
    task.set_caching_options(enable_caching=False)
    if display_name:
        task.set_display_name(display_name)
    return task
