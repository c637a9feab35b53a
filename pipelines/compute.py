"""Named compute profiles: where and on what a heavy pipeline step runs.

A profile is declared once and applied to the steps that predict or train by each
backend (``pipelines.kfp.tasks.apply_profile``, ``pipelines.argo``): accelerator type and count, node selector, tolerations,
CPU / memory requests and limits, and optionally an ``emptyDir`` scratch volume
of a given size mounted as the adapter's working directory.

* ``gpu``      an ``nvidia.com/gpu`` x1 limit, the GPU node pool's node selector and
               a toleration for its taint (real GPU node pools);
* ``gpu-pool`` the node selector and toleration only, no accelerator (a kind
               cluster whose "GPU pool" worker has no GPU);
* ``cpu``      nothing special: any node.

The node-pool values are shared with ``manifests/base/node-pool.yaml`` and
``manifests/kind/cluster.yaml``; change them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

NODE_POOL_LABEL_KEY = "model-adapter.dev/pool"
NODE_POOL_LABEL_VALUE = "gpu"
GPU_TOLERATION_KEY = "nvidia.com/gpu"
GPU_TOLERATION_OPERATOR = "Exists"
GPU_TOLERATION_EFFECT = "NoSchedule"
ACCELERATOR_TYPE = "nvidia.com/gpu"

#: Where the scratch volume of ``ephemeral_storage`` is mounted: the image's
#: ``MODEL_ADAPTER_HOME`` (downloads, training data, checkpoints land there).
SCRATCH_VOLUME = "adapter-scratch"
SCRATCH_MOUNT_PATH = "/home/adapter/.model-adapter"

GPU_NODE_SELECTOR: dict[str, str] = {NODE_POOL_LABEL_KEY: NODE_POOL_LABEL_VALUE}
GPU_TOLERATION: dict[str, str] = {
    "key": GPU_TOLERATION_KEY,
    "operator": GPU_TOLERATION_OPERATOR,
    "effect": GPU_TOLERATION_EFFECT,
}


@dataclass(frozen=True)
class ComputeProfile:
    """Resources and placement of a step. Empty / None fields are not set."""

    name: str
    accelerator_type: str | None = None
    accelerator_count: int = 0
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    cpu_request: str | None = None
    memory_request: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    ephemeral_storage: str | None = None

    @property
    def uses_accelerator(self) -> bool:
        return bool(self.accelerator_type) and self.accelerator_count > 0

    def describe(self) -> str:
        """One line for people."""
        parts = []
        if self.uses_accelerator:
            parts.append(f"{self.accelerator_count} x {self.accelerator_type}")
        if self.node_selector:
            parts.append("nodes " + ",".join(f"{k}={v}" for k, v in self.node_selector.items()))
        if self.tolerations:
            parts.append("tolerates " + ",".join(t.get("key") or "*" for t in self.tolerations))
        req = "/".join(x for x in (self.cpu_request, self.memory_request) if x)
        lim = "/".join(x for x in (self.cpu_limit, self.memory_limit) if x)
        if req:
            parts.append(f"requests {req}")
        if lim:
            parts.append(f"limits {lim}")
        if self.ephemeral_storage:
            parts.append(f"scratch {self.ephemeral_storage}")
        return f"{self.name}: " + ("; ".join(parts) or "no special resources")


PROFILES: dict[str, ComputeProfile] = {
    "gpu": ComputeProfile(
        name="gpu",
        accelerator_type=ACCELERATOR_TYPE,
        accelerator_count=1,
        node_selector=dict(GPU_NODE_SELECTOR),
        tolerations=[dict(GPU_TOLERATION)],
        cpu_request="4",
        memory_request="16Gi",
        cpu_limit="8",
        memory_limit="32Gi",
        ephemeral_storage="50Gi",
    ),
    "gpu-pool": ComputeProfile(
        name="gpu-pool",
        node_selector=dict(GPU_NODE_SELECTOR),
        tolerations=[dict(GPU_TOLERATION)],
        cpu_request="250m",
        memory_request="512Mi",
        cpu_limit="1",
        memory_limit="2Gi",
    ),
    "cpu": ComputeProfile(name="cpu"),
}

#: Requests and limits of every step a profile leaves unset (the light steps: load, commit, promote,
#: finalize, split, merge; and the heavy ones on ``cpu``): namespaces with a ResourceQuota and no
#: LimitRange refuse pods without them. ``load`` loads the model once, hence the memory limit.
STEP_DEFAULTS = ComputeProfile(name="step", cpu_request="250m", memory_request="512Mi", cpu_limit="2", memory_limit="4Gi")


def with_defaults(profile: str | ComputeProfile, defaults: ComputeProfile = STEP_DEFAULTS) -> ComputeProfile:
    """``profile`` with each unset request or limit taken from ``defaults``."""
    p = get_profile(profile)
    return replace(
        p,
        cpu_request=p.cpu_request or defaults.cpu_request,
        memory_request=p.memory_request or defaults.memory_request,
        cpu_limit=p.cpu_limit or defaults.cpu_limit,
        memory_limit=p.memory_limit or defaults.memory_limit,
    )


def get_profile(name: str | ComputeProfile) -> ComputeProfile:
    """The profile named ``name`` (a profile is returned as is)."""
    if isinstance(name, ComputeProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown compute profile {name!r}; known profiles: {', '.join(PROFILES)}") from None
