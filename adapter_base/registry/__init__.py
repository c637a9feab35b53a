"""The registry over the object store: datasets, items, annotations, versioned models."""

from .registry import Registry, guess_mimetype

__all__ = ["Registry", "guess_mimetype"]
