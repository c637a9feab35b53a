"""The commands of every pipeline backend, registered on the ``model-adapter`` CLI by one entry point.

``model-adapter pipeline ...`` (KFP, ``pipelines.kfp.cli``) and ``model-adapter argo ...``
(Argo Workflows, ``pipelines.argo.cli``). A further backend adds its command here.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add each backend's command to the ``model-adapter`` parser."""
    from .argo import cli as argo_cli
    from .kfp import cli as kfp_cli

    kfp_cli.register(sub)
    argo_cli.register(sub)
