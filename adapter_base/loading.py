"""Finding the user's adapter class from an import path (``package.module:Class``)."""

from __future__ import annotations

import importlib

from .errors import ValidationError


def load_adapter_class(path: str) -> type:
    """Import ``package.module:Class`` and check it is a ``BaseModelAdapter`` subclass."""
    from .adapter import BaseModelAdapter

    if not isinstance(path, str) or path.count(":") != 1 or not all(path.split(":")):
        raise ValidationError("adapter", "import_path", f"expected 'package.module:Class', got {path!r}")
    module_name, class_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - ImportError, or whatever the module raises while importing
        raise ValidationError(
            "adapter", "import_path", f"cannot import module {module_name!r} of {path!r}: {type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValidationError("adapter", "import_path", f"module {module_name!r} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, BaseModelAdapter)):
        raise ValidationError("adapter", "import_path", f"{path!r} is not a BaseModelAdapter subclass")
    return cls
