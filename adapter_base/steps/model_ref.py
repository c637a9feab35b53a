"""``ModelRef``: the model version one pipeline step hands the next (a KFP ``Model`` artifact's content).

Heavy data (artifacts, items, predictions, reports) stays in the store; a reference names
the version there and pins its files with ``digest``, so a later step can tell when the
version it is told to use is not the one an earlier step saw.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..entities import ArtifactManifest, Model
from ..errors import ValidationError


def manifest_digest(manifest: ArtifactManifest | None) -> str:
    """``sha256:<hex>`` over a version's (path, sha256) list: one value that pins its files (``""``: no files)."""
    if manifest is None:
        return ""
    h = hashlib.sha256()
    for f in sorted(manifest.files, key=lambda f: f.path):
        h.update(f"{f.sha256}  {f.path}\n".encode())
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class ModelRef:
    """A model version in a store, as steps pass it to each other.

    ``staged``: a training result staged under ``run_id`` that is not a version yet
    (``version`` is then the version it was trained from); ``commit`` makes it one.
    ``base_version``: for a committed result, the version it was trained from.
    """

    model_id: str
    model_name: str
    version: int
    store_uri: str
    digest: str = ""
    files: int = 0
    total_size: int = 0
    status: str = ""
    run_id: str = ""
    staged: bool = False
    base_version: int | None = None
    alias: str = ""
    adapter: str = ""

    @classmethod
    def of(cls, model: Model, store_uri: str, **extra: Any) -> "ModelRef":
        """The reference to ``model``'s current version (``extra``: the optional fields)."""
        files = model.artifacts.files if model.artifacts else []
        return cls(
            model_id=model.id,
            model_name=model.name,
            version=model.version,
            store_uri=store_uri,
            digest=manifest_digest(model.artifacts),
            files=len(files),
            total_size=sum(f.size for f in files),
            status=model.status,
            **extra,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (every field)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelRef":
        """A reference from its JSON form; a missing or mistyped field is an error naming it (unknown keys are ignored)."""
        if not isinstance(data, Mapping):
            raise ValidationError("ModelRef", "(root)", f"expected a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        missing = [name for name in ("model_id", "model_name", "version", "store_uri") if name not in data]
        if missing:
            raise ValidationError("ModelRef", missing[0], f"missing (the reference holds: {', '.join(sorted(data)) or 'nothing'})")
        values = {name: data[name] for name in known if name in data}
        for name in ("model_id", "model_name", "store_uri", "digest", "status", "run_id", "alias", "adapter"):
            if name in values and not isinstance(values[name], str):
                raise ValidationError("ModelRef", name, f"expected a string, got {values[name]!r}")
        for name in ("version", "files", "total_size", "base_version"):
            value = values.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValidationError("ModelRef", name, f"expected an integer, got {value!r}")
        if "version" in values and values["version"] is None:
            raise ValidationError("ModelRef", "version", "expected an integer, got None")
        if not isinstance(values.get("staged", False), bool):
            raise ValidationError("ModelRef", "staged", f"expected a bool, got {values['staged']!r}")
        return cls(**values)
