"""Finding the user's adapter class from an import path (``package.module:Class``) and building one."""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from .adapter import BaseModelAdapter
from .dtlpy_compat.finder import use_if_absent as use_dtlpy_layer_if_absent
from .entities import Model
from .errors import AdapterHookError, ValidationError
from .hook_calls import guarded, raised
from .registry import Registry


def load_adapter_class(path: str) -> type[BaseModelAdapter]:
    """Import ``package.module:Class`` and check it is a ``BaseModelAdapter`` subclass."""
    if not isinstance(path, str) or path.count(":") != 1 or not all(path.split(":")):
        raise ValidationError("adapter", "import_path", f"expected 'package.module:Class', got {path!r}")
    module_name, class_name = path.split(":")
    use_dtlpy_layer_if_absent()  # an adapter written for Dataloop imports dtlpy
    try:
        module = guarded(f"import {module_name}", importlib.import_module, module_name)
    except Exception as exc:  # noqa: BLE001 - ImportError, or whatever the module raises (or exits with) while importing
        cause = exc.raised if isinstance(exc, AdapterHookError) else raised(exc)
        raise ValidationError("adapter", "import_path", f"cannot import module {module_name!r} of {path!r}: {cause}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValidationError("adapter", "import_path", f"module {module_name!r} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, BaseModelAdapter)):
        raise ValidationError("adapter", "import_path", f"{path!r} is not a BaseModelAdapter subclass")
    return cls


def make_adapter(
    registry: Registry,
    adapter_path: str | None = None,
    *,
    model: Model | None = None,
    configuration: Mapping[str, Any] | None = None,
) -> BaseModelAdapter:
    """An instance of the adapter at ``adapter_path`` (default: the one ``model`` names) over ``registry``.

    ``configuration`` overrides the adapter's and the model's configuration keys.
    """
    path = adapter_path or (model.adapter if model is not None else None)
    if not path:
        named = f"model {model.name!r} names no adapter" if model is not None else "no adapter given"
        raise ValidationError("Model", "adapter", f"{named}; pass --adapter package.module:Class")
    cls = load_adapter_class(path)
    return guarded(f"{cls.__name__}.__init__", cls.create, registry, dict(configuration or {}) or None)
