"""What every workflow of this project sets, in one place: names, deadlines, retries, clean-up, security.

The values are the defaults of ``WorkflowOptions``; ``model-adapter argo compile`` takes
the ones people change as options.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The service account the workflow pods run as (``manifests/overlays/argo``: its Role lets
#: Argo's executor create and patch ``workflowtaskresults``).
SERVICE_ACCOUNT = "model-adapter-workflow"
#: Where a step writes its outputs for Argo to read (``outputs.parameters[].valueFrom.path``).
OUTPUTS_DIR = "/tmp/outputs"
#: The image's user (Dockerfile ``USER 1000:1000``).
RUN_AS_USER = 1000
#: The label every object and pod of this project carries, with the pipeline kind as its value.
PIPELINE_LABEL = "model-adapter.dev/pipeline"


def template_name(kind: str) -> str:
    """The WorkflowTemplate of pipeline ``kind``: ``model-adapter-train`` / ``model-adapter-predict``."""
    return f"model-adapter-{kind}"


@dataclass(frozen=True)
class WorkflowOptions:
    """How a workflow runs on the cluster (not what it computes: that is the run's parameters)."""

    #: At most this many shards at once (predict).
    parallelism: int = 8
    #: Retries of each step; a deleted (preempted) pod is retried on every step, a failed shard too.
    retries: int = 3
    #: First retry wait, its growth factor and its cap.
    backoff: str = "30s"
    backoff_factor: int = 2
    backoff_max: str = "10m"
    #: The whole run's deadline (the exit step still runs after it).
    active_deadline_seconds: int = 24 * 3600
    #: How long a finished workflow object stays (its pods go as soon as they succeed).
    ttl_after_success_s: int = 24 * 3600
    ttl_after_failure_s: int = 7 * 24 * 3600
    service_account: str = SERVICE_ACCOUNT

    def check(self) -> "WorkflowOptions":
        """``self``, or a ValueError naming the first bad value."""
        for name in ("parallelism", "active_deadline_seconds", "ttl_after_success_s", "ttl_after_failure_s", "backoff_factor"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        return self
