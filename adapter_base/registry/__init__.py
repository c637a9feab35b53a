"""The registry over the object store: datasets, items, annotations, versioned models."""

from .registry import DuplicatePath, Registry, guess_mimetype, item_path_problem, path_item_id

__all__ = ["DuplicatePath", "Registry", "guess_mimetype", "item_path_problem", "path_item_id"]
