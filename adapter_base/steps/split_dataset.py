"""``split_dataset``: list the matching items once and write one manifest of item ids (and record copies) per shard to the store."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from .. import sharding
from ..entities import Filters
from ..registry import Registry, layout

log = logging.getLogger(__name__)


def split_dataset(dataset: str, num_shards: int, run_id: str, *, filters: Mapping[str, Any] | None = None, store_uri: str = "") -> dict[str, Any]:
    """Write ``num_shards`` shard manifests under ``runs/<run_id>/shards/``; returns the shard index (keys and counts)."""
    with Registry.open(store_uri or None) as registry:
        ds = registry.get_dataset(dataset)
        # streamed: never a list of every item; unreadable records stay in, to fail by name in their shard
        listing = registry.iter_item_results(ds.id, Filters.coerce(dict(filters or {})))
        index = sharding.write_shards(registry.store, run_id, ds.id, listing, int(num_shards), filters=filters)
        index["store_uri"] = registry.store.uri
        log.info("split %d item(s) of %s into %d shard(s) under %s", index["total"], ds.name, index["num_shards"], layout.shards_prefix(run_id))
        return index
