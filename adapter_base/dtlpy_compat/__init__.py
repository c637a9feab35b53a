"""dtlpy's names for adapters, mapped onto adapter_base: Dataloop adapters run here unedited.

When the real ``dtlpy`` is not installed, ``finder.use_if_absent`` (called by
``adapter_base.loading`` before it imports an adapter) lets ``import dtlpy as dl`` and
``from dtlpy.utilities.dataset_generators... import ...`` resolve to this package. A real
installed dtlpy is never shadowed. What maps to what, and what differs: docs/dtlpy.md.
"""
