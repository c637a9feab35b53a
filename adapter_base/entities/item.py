"""Items: one stored file (image, text, ...) of a dataset."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ValidationError
from ._base import Entity, check_dict, check_int, check_jsonable, check_path_part, check_str, check_str_list, new_id, utc_now

SUPPORTED_MIMETYPES: tuple[str, ...] = (
    "image/png",
    "image/jpeg",
    "image/bmp",
    "image/gif",
    "image/tiff",
    "image/webp",
    "text/plain",
    "application/json",
    "application/octet-stream",
)


_CONTROL = re.compile(r"[\x00-\x1f]")


def check_relative_path(entity: str, field_name: str, path: Any) -> None:
    """A relative POSIX path with no ``..``, no empty parts and no absolute prefix."""
    check_str(entity, field_name, path)
    if path[:1] in ("/", "\\") or path[1:2] == ":":
        raise ValidationError(entity, field_name, f"must be a relative path, got {path!r}")
    # Substring tests instead of a loop over parts: manifests validate thousands of rows.
    wrapped = "/" + path.replace("\\", "/") + "/"
    if "//" in wrapped or "/./" in wrapped or "/../" in wrapped:
        raise ValidationError(entity, field_name, f"must not contain '..', '.' or empty parts: {path!r}")
    if _CONTROL.search(path):
        raise ValidationError(entity, field_name, f"must not contain control characters: {path!r}")


@dataclass
class Item(Entity):
    """A file in a dataset. ``path`` is relative to the dataset root (``train/0001.png``)."""

    kind: ClassVar[str] = "Item"

    dataset_id: str
    path: str
    mimetype: str
    size: int = 0
    id: str = field(default_factory=new_id)
    subsets: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    @property
    def name(self) -> str:
        """The file name, without directories."""
        return posixpath.basename(self.path)

    @property
    def dir(self) -> str:
        """The directory part of ``path`` with a leading slash (``/train``)."""
        return "/" + posixpath.dirname(self.path)

    def validate(self) -> None:
        check_path_part(self.kind, "id", self.id)
        check_path_part(self.kind, "dataset_id", self.dataset_id)
        check_relative_path(self.kind, "path", self.path)
        check_str(self.kind, "mimetype", self.mimetype)
        if self.mimetype not in SUPPORTED_MIMETYPES:
            raise ValidationError(
                self.kind, "mimetype", f"unsupported mimetype {self.mimetype!r} (supported: {', '.join(SUPPORTED_MIMETYPES)})"
            )
        check_int(self.kind, "size", self.size, lo=0)
        check_str_list(self.kind, "subsets", self.subsets)
        check_dict(self.kind, "metadata", self.metadata)
        check_jsonable(self.kind, "metadata", self.metadata)
        check_str(self.kind, "created_at", self.created_at)
