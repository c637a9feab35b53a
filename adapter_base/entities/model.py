"""Models: a named, versioned adapter configuration with its artifacts and metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ValidationError
from ._base import (
    Entity,
    check_choice,
    check_dict,
    check_int,
    check_jsonable,
    check_name,
    check_optional_path_part,
    check_optional_str,
    check_path_part,
    check_str,
    check_str_list,
    new_id,
    utc_now,
)
from .filters import Filters
from .item import check_relative_path

_SHA256 = re.compile(r"[0-9a-f]{64}")

MODEL_STATUSES: tuple[str, ...] = ("created", "training", "trained", "failed")


@dataclass
class ArtifactFile(Entity):
    """One artifact file: path relative to the artifacts root, size and SHA-256."""

    kind: ClassVar[str] = "ArtifactFile"

    path: str
    size: int
    sha256: str

    def validate(self) -> None:
        check_relative_path(self.kind, "path", self.path)
        check_int(self.kind, "size", self.size, lo=0)
        check_str(self.kind, "sha256", self.sha256)
        if not _SHA256.fullmatch(self.sha256):
            raise ValidationError(self.kind, "sha256", f"expected 64 lowercase hex digits, got {self.sha256!r}")


def _decode_files(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data["files"]`` (a list of dicts) as ``ArtifactFile`` rows."""
    files = data.get("files", [])
    if not isinstance(files, list):
        raise ValidationError(kind, "files", "expected a list")
    data["files"] = [ArtifactFile.from_dict(f) for f in files]
    return data


@dataclass
class ArtifactManifest(Entity):
    """The complete file list of one model version; written last, so it marks the version done."""

    kind: ClassVar[str] = "ArtifactManifest"

    model_id: str
    version: int
    files: list[ArtifactFile] = field(default_factory=list)
    created_at: str = field(default_factory=utc_now)

    @property
    def total_size(self) -> int:
        """Bytes over all files."""
        return sum(f.size for f in self.files)

    def validate(self) -> None:
        check_path_part(self.kind, "model_id", self.model_id)
        check_int(self.kind, "version", self.version, lo=1)
        check_str(self.kind, "created_at", self.created_at)
        if not isinstance(self.files, list):
            raise ValidationError(self.kind, "files", "expected a list")
        seen: set[str] = set()
        for f in self.files:
            f.validate()
            if f.path in seen:
                raise ValidationError(self.kind, "files", f"duplicate path {f.path!r}")
            seen.add(f.path)

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        return _decode_files(cls.kind, data)


@dataclass
class CheckpointSet(Entity):
    """The published training checkpoints of a model: the files of one epoch end, whole.

    ``generation`` counts the pushes; ``generations[path]`` is the push that uploaded each
    file (its key: ``layout.checkpoint_file``). Written last, so it never names a file
    a killed push left half-uploaded.
    """

    kind: ClassVar[str] = "CheckpointSet"

    model_id: str
    generation: int
    files: list[ArtifactFile] = field(default_factory=list)
    generations: dict[str, int] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    def validate(self) -> None:
        check_path_part(self.kind, "model_id", self.model_id)
        check_int(self.kind, "generation", self.generation, lo=1)
        check_str(self.kind, "created_at", self.created_at)
        if not isinstance(self.files, list):
            raise ValidationError(self.kind, "files", "expected a list")
        check_dict(self.kind, "generations", self.generations)
        for f in self.files:
            f.validate()
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValidationError(self.kind, "files", "duplicate path")
        if set(paths) != set(self.generations):
            raise ValidationError(self.kind, "generations", "expected one generation per file, no more")
        for path, gen in self.generations.items():
            check_int(self.kind, f"generations[{path!r}]", gen, lo=1)
            if gen > self.generation:
                raise ValidationError(self.kind, f"generations[{path!r}]", f"{gen} is newer than the set's generation {self.generation}")

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        return _decode_files(cls.kind, data)


@dataclass
class Model(Entity):
    """A model record. ``version`` is the current artifact version (0: none yet).

    ``subsets`` names the item filters used for training and evaluation, e.g.
    ``{"train": {"subset": "train"}, "validation": {"subset": "validation"}}``.
    ``aliases`` map names such as ``production`` to versions.
    """

    kind: ClassVar[str] = "Model"

    name: str
    id: str = field(default_factory=new_id)
    adapter: str | None = None
    configuration: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    input_type: str = "image"
    output_type: str = "classification"
    dataset_id: str | None = None
    subsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "created"
    status_message: str | None = None
    version: int = 0
    artifacts: ArtifactManifest | None = None
    parent_model_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)

    def validate(self) -> None:
        # Names, ids and subset names become local paths and store keys: checked on every read.
        check_path_part(self.kind, "id", self.id)
        check_name(self.kind, "name", self.name)
        check_optional_str(self.kind, "adapter", self.adapter)
        check_dict(self.kind, "configuration", self.configuration)
        check_jsonable(self.kind, "configuration", self.configuration)
        check_str_list(self.kind, "labels", self.labels)
        check_str(self.kind, "input_type", self.input_type)
        check_str(self.kind, "output_type", self.output_type)
        check_optional_path_part(self.kind, "dataset_id", self.dataset_id)
        check_dict(self.kind, "subsets", self.subsets)
        for name, flt in self.subsets.items():
            check_path_part(self.kind, "subsets", name)
            try:
                Filters.coerce(flt)
            except ValidationError as exc:
                raise ValidationError(self.kind, f"subsets.{name}", str(exc)) from None
        check_choice(self.kind, "status", self.status, MODEL_STATUSES)
        check_optional_str(self.kind, "status_message", self.status_message)
        check_int(self.kind, "version", self.version, lo=0)
        if self.artifacts is not None:
            if not isinstance(self.artifacts, ArtifactManifest):
                raise ValidationError(self.kind, "artifacts", f"expected an ArtifactManifest object, got {type(self.artifacts).__name__}")
            self.artifacts.validate()
            if self.artifacts.version != self.version:
                raise ValidationError(self.kind, "artifacts", f"manifest is version {self.artifacts.version}, model is {self.version}")
        elif self.version:
            raise ValidationError(self.kind, "artifacts", f"version {self.version} has no manifest")
        check_optional_path_part(self.kind, "parent_model_id", self.parent_model_id)
        check_dict(self.kind, "metrics", self.metrics)
        check_jsonable(self.kind, "metrics", self.metrics)
        check_dict(self.kind, "aliases", self.aliases)
        check_str(self.kind, "created_at", self.created_at)
        check_str(self.kind, "updated_at", self.updated_at)
        for alias, v in self.aliases.items():
            check_int(self.kind, f"aliases.{alias}", v, lo=1)

    def subset_filters(self, name: str) -> Filters:
        """The filters of the named subset (``train``, ``validation``, ...)."""
        if name not in self.subsets:
            raise ValidationError(self.kind, "subsets", f"model {self.name!r} has no subset named {name!r} (has: {', '.join(self.subsets) or 'none'})")
        return Filters.coerce(self.subsets[name])

    @classmethod
    def _decode(cls, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("artifacts"), dict):
            data["artifacts"] = ArtifactManifest.from_dict(data["artifacts"])
        return data
