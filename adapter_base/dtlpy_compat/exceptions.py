"""``dtlpy.exceptions``: dtlpy's exception names as ours."""

from __future__ import annotations

from ..errors import AdapterError, NotFoundError, ValidationError

PlatformException = AdapterError
NotFound = NotFoundError
BadRequest = ValidationError

__all__ = ["BadRequest", "NotFound", "PlatformException"]
