"""Building the lightweight components with the project image as their base image.

Every component is a plain Python function (imports inside its body, so its source
is all KFP ships) that runs on ``base_image``: the project image, or an image built
``FROM`` it that adds the user's adapter package. The image is chosen when a
pipeline is built (``build_components(image)``), so one pipeline definition compiles
for any image.
"""

from __future__ import annotations

import os
from typing import Callable

from kfp import dsl

DEFAULT_IMAGE = "model-adapter:dev"
IMAGE_ENV = "MODEL_ADAPTER_IMAGE"


def default_image() -> str:
    """``$MODEL_ADAPTER_IMAGE``, else ``model-adapter:dev``."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def make_component(func: Callable, image: str | None = None) -> dsl.base_component.BaseComponent:
    """``func`` as a lightweight component on ``image`` (default: ``default_image()``).

    The image already has kfp, ``adapter_base`` and the adapters installed, so
    nothing is pip-installed when the step starts (clusters may have no internet).
    """
    return dsl.component(func=func, base_image=image or default_image(), install_kfp_package=False)
