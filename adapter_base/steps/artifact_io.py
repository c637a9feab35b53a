"""Reading and writing a step's KFP artifacts: strict JSON files, their metadata, finite metrics.

The components in ``components/`` hand their artifacts (anything with ``.path`` and
``.metadata``; a ``Metrics`` one also has ``log_metric``) to these helpers instead of
opening files themselves. Every value written is strict JSON: the KFP backend's Go
launcher cannot parse a bare ``NaN``, so non-finite numbers leave a step as strings
(files) or not at all (metrics).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol

from ..errors import ValidationError
from ..metrics import finite_numbers, json_safe
from .model_ref import ModelRef


class FileArtifact(Protocol):
    """What a KFP artifact offers a step: a local file path and a metadata dict."""

    path: str
    metadata: dict[str, Any]


class MetricsArtifact(Protocol):
    """A KFP ``Metrics`` artifact."""

    def log_metric(self, metric: str, value: float) -> None: ...


def write_json(path: str | Path, value: Any) -> None:
    """Write ``value`` to ``path`` as strict JSON (non-finite numbers as strings)."""
    with open(path, "w") as f:
        json.dump(json_safe(value), f, indent=1, allow_nan=False)


def read_json(artifact: FileArtifact) -> Any:
    """The JSON value in an input artifact's file; an unreadable one is an error naming the file."""
    try:
        with open(artifact.path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError("step input", str(artifact.path), f"cannot read it as JSON: {exc}") from None


def write_output(artifact: FileArtifact, value: Mapping[str, Any], metadata: Iterable[str] = ()) -> None:
    """Write ``value`` to an output artifact's file, and the ``metadata`` keys of it to the artifact's metadata."""
    write_json(artifact.path, value)
    artifact.metadata.update(json_safe({key: value[key] for key in metadata if key in value}))


def read_ref(artifact: FileArtifact) -> ModelRef:
    """The model reference an earlier step wrote to ``artifact``."""
    return ModelRef.from_dict(read_json(artifact))


def write_ref(artifact: FileArtifact, ref: ModelRef) -> None:
    """Write ``ref`` to a ``Model`` output artifact (file and metadata)."""
    data = ref.to_dict()
    write_output(artifact, data, metadata=data)


def log_metrics(artifact: MetricsArtifact, values: Mapping[str, Any], keys: Iterable[str] | None = None) -> None:
    """Log the finite numbers among ``values`` (only ``keys``, when given) to a ``Metrics`` artifact, sorted by name."""
    chosen = values if keys is None else {key: values[key] for key in keys if key in values}
    for key, value in sorted(finite_numbers(chosen).items()):
        artifact.log_metric(key, value)
