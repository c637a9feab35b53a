"""How store settings reach the pipeline steps: a ConfigMap and a Secret, as environment variables.

The ConfigMap ``model-adapter-store`` carries where the store is; the Secret
``model-adapter-store-credentials`` carries the S3 keys. Each backend maps them
into every step that touches the store (``pipelines.kfp.tasks``, ``pipelines.argo``), so credentials never appear in
pipeline parameters, the compiled YAML or the logs (only the names do).
"""

from __future__ import annotations

STORE_CONFIG_MAP = "model-adapter-store"
STORE_CONFIG_KEYS: tuple[str, ...] = ("MODEL_ADAPTER_STORE", "AWS_ENDPOINT_URL", "AWS_REGION", "MODEL_ADAPTER_S3_PATH_STYLE")
STORE_SECRET = "model-adapter-store-credentials"
STORE_SECRET_KEYS: tuple[str, ...] = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
