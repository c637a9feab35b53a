"""KFP v2 components: one per pipeline step, named like the step's module in ``adapter_base.steps``.

Each module holds one plain function (imports inside its body) that reads its input
artifacts, calls the step function of the same name in ``adapter_base.steps.<name>`` and
writes the result with ``adapter_base.steps.artifact_io``. ``build_components(image)`` turns them into
lightweight components whose base image is the project image (or one built
``FROM`` it with the user's adapter), chosen per pipeline:

    from components import build_components
    ops = build_components("registry.example.com/my-adapters:1.0")
    task = ops.load(adapter="pkg.mod:MyAdapter", model="m", ...)
"""

from ._factory import DEFAULT_IMAGE, IMAGE_ENV, default_image, make_component
from .catalog import FUNCTIONS, ComponentSet, build_components

__all__ = [
    "DEFAULT_IMAGE",
    "FUNCTIONS",
    "IMAGE_ENV",
    "ComponentSet",
    "build_components",
    "default_image",
    "make_component",
]
