"""KFP v2 components: one per wrapper function, plus the small steps the DAGs need.

Each module holds one plain function (imports inside its body) that calls into
``adapter_base.pipeline_steps``. ``build_components(image)`` turns them into
lightweight components whose base image is the project image (or one built
``FROM`` it with the user's adapter), chosen per pipeline:

    from components import build_components
    ops = build_components("registry.example.com/my-adapters:1.0")
    task = ops.load_from_model(adapter="pkg.mod:MyAdapter", model="m", ...)
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
