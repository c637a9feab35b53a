"""A model's stored predictions on a dataset, written to a file as JSON lines, CSV or COCO detection results.

Streaming: items are listed and their prediction sets read a bounded window ahead, and each
row is written as it comes, so memory does not grow with the dataset. The file appears whole
when the export finishes (written beside it, then renamed); a failed export leaves none.

    (one model version's prediction sets; every row names that version)

    jsonl  one line per item with predictions: item id, path, subsets, model version, run id, annotations
    csv    one row per predicted annotation: item_id, path, subsets, model_version, type, label,
           confidence, left, top, right, bottom (boxes), coordinates (JSON, other shapes)
    coco   a COCO detection results list, ``[{image_id, category_id, bbox: [x, y, w, h], score}]``
           (what ``pycocotools.coco.COCO.loadRes`` reads), plus ``<name>.images.json`` beside it: a
           COCO dataset without annotations (``images``, ``categories``) that ``COCO()`` loads and
           ``loadRes`` accepts. ``image_id`` is the item's ``coco_image_id`` (imported from COCO),
           else its 1-based position; ``category_id`` comes from ``categories`` (name -> id, e.g.
           the COCO file the dataset was imported from), else the 1-based position in the labels.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

from .concurrency import ordered_map
from .entities import Dataset, Filters, Item, Model, PredictionSet
from .errors import ValidationError
from .registry import Registry
from .storage.atomic import atomic_write

log = logging.getLogger(__name__)

EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "csv", "coco")
CSV_COLUMNS: tuple[str, ...] = (
    "item_id", "path", "subsets", "model_version", "type", "label", "confidence", "left", "top", "right", "bottom", "coordinates",
)  # fmt: skip

#: A listed item and the model's prediction set on it (None: the model has not predicted it; an
#: error: the set is unreadable or is not this item's and this model's, so it is not exported).
Row = tuple[Item, "PredictionSet | ValidationError | None"]


@dataclass
class ExportResult:
    """What an export wrote."""

    path: Path
    format: str
    items: int = 0
    exported: int = 0
    annotations: int = 0
    without_predictions: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    images_path: Path | None = None
    #: The model version whose prediction sets were exported.
    version: int | None = None

    def summary(self) -> str:
        """One line for people."""
        text = (
            f"exported {self.annotations} prediction(s) on {self.exported} of {self.items} item(s) to {self.path} "
            f"({self.format}{f', model version {self.version}' if self.version is not None else ''})"
            f"{f', images and categories in {self.images_path}' if self.images_path else ''}"
        )
        if self.without_predictions:
            text += f"; {self.without_predictions} item(s) have no predictions from this model" + (
                f" at version {self.version}" if self.version is not None else ""
            )
        for why, count in self.skipped.items():
            text += f"; skipped {count} {why}"
        return text


def iter_predictions(
    registry: Registry, dataset: Dataset, model: Model, filters: Filters | Mapping[str, Any] | None = None, *, version: int
) -> Iterator[Row]:
    """``(item, the prediction set of model ``version``, None or the ValidationError that makes it unreadable)``
    for the matching items, read a bounded window ahead."""

    def read(item: Item) -> PredictionSet | None:
        return registry.get_predictions(item, model.id, version)

    for item, result in ordered_map(read, registry.iter_items(dataset, filters), pool=registry.pool, window=4 * registry.io_workers):
        if isinstance(result, BaseException) and not isinstance(result, ValidationError):
            raise result
        yield item, result


def category_ids(labels: Sequence[str], categories: Sequence[Mapping[str, Any]] | None = None) -> dict[str, int]:
    """Label name -> COCO category id: from ``categories`` (COCO ``{id, name}`` objects) when given, else 1, 2, ... in ``labels`` order."""
    if categories is None:
        return {label: n for n, label in enumerate(labels, start=1)}
    out: dict[str, int] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, Mapping) or not isinstance(cat.get("name"), str) or isinstance(cat.get("id"), bool) or not isinstance(cat.get("id"), int):
            raise ValidationError("export", f"categories[{i}]", f"expected an object with an integer id and a name, got {cat!r}")
        out[cat["name"]] = cat["id"]
    return out


def read_categories(path: str | Path) -> list[dict[str, Any]]:
    """The ``categories`` list of a COCO JSON file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError("export", "--categories", f"cannot read COCO categories from {path}: {exc}") from None
    cats = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(cats, list):
        raise ValidationError("export", "--categories", f"{path} has no 'categories' list")
    return cats


def images_path_for(path: Path) -> Path:
    """Where a COCO export's images and categories go: ``<name>.images.json`` beside the results."""
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    return path.with_name(f"{stem}.images.json")


def write_export(
    rows: Iterable[Row],
    path: str | Path,
    format: str,
    *,
    labels: Sequence[str] = (),
    categories: Sequence[Mapping[str, Any]] | None = None,
    version: int | None = None,
) -> ExportResult:
    """Write ``rows`` to ``path`` in ``format`` (one of ``EXPORT_FORMATS``), one row at a time; ``version``: the model version they are of."""
    if format not in EXPORT_FORMATS:
        raise ValidationError("export", "--format", f"must be one of {', '.join(EXPORT_FORMATS)}; got {format!r}")
    result = ExportResult(Path(path), format, version=version)
    with atomic_write(result.path) as tmp, open(tmp, "w", newline="" if format == "csv" else None) as out:
        if format == "jsonl":
            _write_jsonl(rows, out, result)
        elif format == "csv":
            _write_csv(rows, out, result)
        else:
            result.images_path = images_path_for(result.path)
            with atomic_write(result.images_path) as images_tmp, open(images_tmp, "w") as images:
                _write_coco(rows, out, images, category_ids(labels, categories), result)
    return result


def _counted(rows: Iterable[Row], result: ExportResult) -> Iterator[tuple[int, Item, PredictionSet]]:
    """The rows with predictions, numbered from 1 in listing order; counts items with none, and unreadable sets."""
    for n, (item, pset) in enumerate(rows, start=1):
        result.items += 1
        if pset is None:
            result.without_predictions += 1
            continue
        if isinstance(pset, ValidationError):
            log.warning("item %s (%s): its prediction set is not exported: %s", item.id, item.path, pset)
            why = "unreadable prediction set(s) (see the warnings)"
            result.skipped[why] = result.skipped.get(why, 0) + 1
            continue
        result.exported += 1
        result.annotations += len(pset.annotations)
        yield n, item, pset


def _write_jsonl(rows: Iterable[Row], out: IO[str], result: ExportResult) -> None:
    for _, item, pset in _counted(rows, result):
        line = {
            "item_id": item.id,
            "path": item.path,
            "subsets": item.subsets,
            "model_id": pset.model_id,
            "model_name": pset.model_name,
            "model_version": pset.model_version,
            "run_id": pset.run_id,
            "annotations": [
                {"type": a.type, "label": a.label, "confidence": a.confidence, "coordinates": a.coordinates, "attributes": a.attributes}
                for a in pset.annotations
            ],
        }
        out.write(json.dumps(line, allow_nan=False) + "\n")


def _write_csv(rows: Iterable[Row], out: IO[str], result: ExportResult) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for _, item, pset in _counted(rows, result):
        for a in pset.annotations:
            box = [a.coordinates[k] for k in ("left", "top", "right", "bottom")] if a.type == "box" else ["", "", "", ""]
            other = json.dumps(a.coordinates) if a.type not in ("box", "classification") else ""
            writer.writerow([item.id, item.path, ";".join(item.subsets), pset.model_version, a.type, a.label, a.confidence, *box, other])


def _write_coco(rows: Iterable[Row], out: IO[str], images: IO[str], cats: Mapping[str, int], result: ExportResult) -> None:
    out.write("[")
    images.write('{"images": [')
    first_result = first_image = True
    unknown: set[str] = set()
    for n, item, pset in _counted(rows, result):
        image_id = item.metadata.get("coco_image_id", n)
        entry = {"id": image_id, "file_name": item.path, "item_id": item.id, "model_version": pset.model_version}
        for key in ("width", "height"):
            if key in item.metadata:
                entry[key] = item.metadata[key]
        images.write(("" if first_image else ",") + "\n" + json.dumps(entry))
        first_image = False
        for a in pset.annotations:
            if a.type != "box":
                why = f"{a.type} annotation(s) (COCO detection results hold boxes)"
                result.skipped[why] = result.skipped.get(why, 0) + 1
                continue
            if a.label not in cats:
                unknown.add(a.label)
                continue
            c = a.coordinates
            det = {
                "image_id": image_id,
                "category_id": cats[a.label],
                "bbox": [c["left"], c["top"], c["right"] - c["left"], c["bottom"] - c["top"]],
                "score": a.confidence,
            }
            out.write(("" if first_result else ",") + "\n" + json.dumps(det, allow_nan=False))
            first_result = False
    out.write("\n]\n")
    categories = [{"id": cid, "name": name} for name, cid in sorted(cats.items(), key=lambda kv: kv[1])]
    images.write('\n], "annotations": [], "categories": ' + json.dumps(categories) + "}\n")
    if unknown:
        raise ValidationError(
            "export",
            "categories",
            f"predicted label(s) {', '.join(sorted(unknown))} are not among the categories ({', '.join(cats) or 'none'}); "
            "pass --categories with a COCO file that names them",
        )
