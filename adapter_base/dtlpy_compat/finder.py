"""The import hook that serves ``dtlpy`` (and its few submodules adapters import) from this package.

Installed only when no real ``dtlpy`` can be imported, and appended to ``sys.meta_path``:
every ordinary finder is asked first, so a dtlpy installed later still wins. Each served
name is a fresh module holding the public names of one module of this package; any other
attribute, or any other ``dtlpy.*`` module, raises an error naming it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import types
from typing import Any, Sequence

from .unsupported import hint

log = logging.getLogger(__name__)

_PKG = __name__.rpartition(".")[0]

#: dtlpy module name -> (module of this package whose public names it holds, is it a package).
SERVED: dict[str, tuple[str, bool]] = {
    "dtlpy": ("api", True),
    "dtlpy.entities": ("entities", True),
    "dtlpy.exceptions": ("exceptions", False),
    "dtlpy.ml": ("api", True),
    "dtlpy.ml.base_model_adapter": ("api", False),
    "dtlpy.utilities": ("utilities", True),
    "dtlpy.utilities.dataset_generators": ("generators", True),
    "dtlpy.utilities.dataset_generators.dataset_generator": ("generators", False),
    "dtlpy.utilities.dataset_generators.dataset_generator_torch": ("generators", False),
}


class DtlpyLayerError(NotImplementedError):
    """A dtlpy call this layer cannot honour (it has no meaning without the Dataloop platform)."""


def message(name: str) -> str:
    """Why the dtlpy name ``name`` is missing here, and what to use instead."""
    return f"{name} is not provided by model-adapter's dtlpy layer (dtlpy is not installed): {hint(name)}"


def missing(name: str) -> DtlpyLayerError:
    """The error for calling ``name``, which this layer cannot honour."""
    return DtlpyLayerError(message(name))


def missing_attribute(name: str) -> AttributeError:
    """The error for reading the attribute ``name`` (an AttributeError, so ``hasattr`` and ``getattr(.., default)`` work)."""
    return AttributeError(message(name))


def _module_getattr(fullname: str) -> Any:
    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        sub = f"{fullname}.{name}"
        if sub in SERVED:
            return importlib.import_module(sub)
        raise missing_attribute(sub)

    return __getattr__


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        target_name, is_package = SERVED[spec.name]
        target = importlib.import_module(f"{_PKG}.{target_name}")
        module = types.ModuleType(spec.name, target.__doc__)
        for name in getattr(target, "__all__", ()):
            setattr(module, name, getattr(target, name))
        module.__getattr__ = _module_getattr(spec.name)  # type: ignore[method-assign]
        if is_package:
            module.__path__ = []  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: ``create_module`` filled it."""


class DtlpyFinder(importlib.abc.MetaPathFinder):
    """Finds ``dtlpy`` and the submodules in ``SERVED``; any other ``dtlpy.*`` raises ModuleNotFoundError naming it."""

    announced = False

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "dtlpy" and not fullname.startswith("dtlpy."):
            return None
        if fullname not in SERVED:
            raise ModuleNotFoundError(message(fullname), name=fullname)
        if fullname == "dtlpy" and not DtlpyFinder.announced:
            DtlpyFinder.announced = True
            log.info("dtlpy is not installed: `import dtlpy` gets model-adapter's dtlpy layer (%s; see docs/dtlpy.md)", _PKG)
        return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=SERVED[fullname][1])


def use_if_absent() -> bool:
    """Serve ``dtlpy`` from this package unless a real one is importable; True when the layer is in use."""
    if any(isinstance(f, DtlpyFinder) for f in sys.meta_path):
        return True
    if "dtlpy" in sys.modules or importlib.util.find_spec("dtlpy") is not None:
        return False
    sys.meta_path.append(DtlpyFinder())
    return True
