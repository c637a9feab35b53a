"""A model's stored embeddings on a dataset, written to a file: JSON lines or a NumPy ``.npy`` matrix.

Streaming, as ``export``: items are listed and their embeddings read a bounded window
ahead; the file appears whole when the export finishes (a failed export leaves none).

    jsonl  one line per embedded item: item_id, path, subsets, model_version, run_id, vector
    npy    an ``N x D`` float32 matrix, one row per embedded item in listing order, plus
           ``<name>.items.jsonl`` beside it: the row's item_id and path, one line per row
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

import numpy as np

from .concurrency import ordered_map
from .entities import Dataset, Embedding, Filters, Item, Model
from .errors import ValidationError
from .registry import Registry
from .storage.atomic import atomic_write

EMBEDDING_FORMATS: tuple[str, ...] = ("jsonl", "npy")
_ROWS_PER_COPY = 4096

#: A listed item and the model's embedding of it (None: not embedded by this model).
EmbeddingRow = tuple[Item, "Embedding | None"]


@dataclass
class EmbeddingExport:
    """What an embeddings export wrote."""

    path: Path
    format: str
    items: int = 0
    exported: int = 0
    dimension: int | None = None
    items_path: Path | None = None

    def summary(self) -> str:
        """One line for people."""
        text = f"exported {self.exported} embedding(s) of {self.items} item(s) to {self.path} ({self.format}"
        text += f", dimension {self.dimension})" if self.dimension is not None else ")"
        if self.items_path:
            text += f", item ids in {self.items_path}"
        if self.items > self.exported:
            text += f"; {self.items - self.exported} item(s) have no embedding from this model"
        return text


def iter_embeddings(registry: Registry, dataset: Dataset, model: Model, filters: Filters | Mapping[str, Any] | None = None) -> Iterator[EmbeddingRow]:
    """``(item, the model's embedding or None)`` for the matching items, read a bounded window ahead."""
    read = lambda item: registry.get_embedding(item, model.id)  # noqa: E731
    for item, result in ordered_map(read, registry.iter_items(dataset, filters), pool=registry.pool, window=4 * registry.io_workers):
        if isinstance(result, BaseException):
            raise result
        yield item, result


def items_path_for(path: Path) -> Path:
    """Where an ``npy`` export's row -> item list goes: ``<name>.items.jsonl`` beside it."""
    stem = path.name[: -len(".npy")] if path.name.endswith(".npy") else path.name
    return path.with_name(f"{stem}.items.jsonl")


def write_embeddings(rows: Iterable[EmbeddingRow], path: str | Path, format: str) -> EmbeddingExport:
    """Write ``rows`` to ``path`` in ``format`` (one of ``EMBEDDING_FORMATS``), one row at a time."""
    if format not in EMBEDDING_FORMATS:
        raise ValidationError("embeddings export", "--format", f"must be one of {', '.join(EMBEDDING_FORMATS)}; got {format!r}")
    result = EmbeddingExport(Path(path), format)
    if format == "jsonl":
        with atomic_write(result.path) as tmp, open(tmp, "w") as out:
            for item, emb in _counted(rows, result):
                out.write(json.dumps({"item_id": item.id, "path": item.path, "subsets": item.subsets, "model_version": emb.model_version, "run_id": emb.run_id, "vector": emb.vector}) + "\n")
        return result
    result.items_path = items_path_for(result.path)
    with atomic_write(result.path) as tmp, atomic_write(result.items_path) as items_tmp, open(items_tmp, "w") as index:
        raw = tmp.with_name(tmp.name + ".rows")
        try:
            with open(raw, "wb") as rows_out:
                _write_rows(rows, rows_out, index, result)
            shape = (result.exported, result.dimension or 0)
            matrix = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            if matrix.size:  # copied in slices: memory stays bounded whatever the size
                source = np.memmap(raw, dtype=np.float32, mode="r", shape=shape)
                for start in range(0, shape[0], _ROWS_PER_COPY):
                    matrix[start : start + _ROWS_PER_COPY] = source[start : start + _ROWS_PER_COPY]
                del source
            matrix.flush()
            del matrix
        finally:
            raw.unlink(missing_ok=True)
    return result


def _counted(rows: Iterable[EmbeddingRow], result: EmbeddingExport) -> Iterator[tuple[Item, Embedding]]:
    """The rows with an embedding, all of one dimension (a different one is an error naming the item)."""
    for item, emb in rows:
        result.items += 1
        if emb is None:
            continue
        if result.dimension is None:
            result.dimension = len(emb.vector)
        elif len(emb.vector) != result.dimension:
            raise ValidationError(f"item {item.id} ({item.path})", "embedding", f"has {len(emb.vector)} numbers, the items before it {result.dimension}")
        result.exported += 1
        yield item, emb


def _write_rows(rows: Iterable[EmbeddingRow], out: IO[bytes], index: IO[str], result: EmbeddingExport) -> None:
    for item, emb in _counted(rows, result):
        out.write(np.asarray(emb.vector, dtype=np.float32).tobytes())
        index.write(json.dumps({"item_id": item.id, "path": item.path}) + "\n")
