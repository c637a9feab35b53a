"""``dtlpy.utilities``: only ``dataset_generators`` exists here (``dl.utilities.dataset_generators``)."""

from __future__ import annotations

__all__: list[str] = []
