"""The worst mistakes of an evaluation (what a person looks at first) and their thumbnails.

A classification mistake is a wrong label, ranked by the confidence the model gave it;
a detection mistake is an image with missed ground-truth boxes or false detections,
ranked by missed boxes plus the confidence of the false ones. ``WorstMistakes`` keeps only
the worst ``limit`` of any number of items; ``thumbnail_png`` draws one image, small, with
its true (green) and predicted (red) boxes.
"""

from __future__ import annotations

import base64
import heapq
import io
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapter_base.metrics.detection import iou_matrix

#: How many mistakes a report shows, and the longest side of a thumbnail in pixels
#: (larger for images with boxes: the boxes need room).
MAX_MISTAKES = 12
THUMBNAIL_SIDE = 128
BOX_THUMBNAIL_SIDE = 224
#: A predicted box matches a true box of its label at this IoU (COCO's AP50 threshold).
MATCH_IOU = 0.5
#: Thumbnails are drawn from at most this many pixels of the source image (a bound on decoding work).
_MAX_SOURCE_PIXELS = 64_000_000

TRUE_COLOUR = (0, 160, 0)
PREDICTED_COLOUR = (220, 0, 0)
HALO_COLOUR = (255, 255, 255)

Box = tuple[float, float, float, float]
TrueBox = tuple[str, Box]
PredictedBox = tuple[str, Box, "float | None"]


@dataclass(frozen=True)
class Mistake:
    """One item the model got wrong: what it is, how bad, and what to draw."""

    item_id: str
    path: str
    score: float
    """How bad: higher is worse (the wrong label's confidence; missed boxes + false boxes' confidence)."""
    truth: str
    """The true label, or a summary of the true boxes."""
    predicted: str
    """The predicted label (with its confidence), or what went wrong with the boxes."""
    true_boxes: tuple[TrueBox, ...] = ()
    predicted_boxes: tuple[PredictedBox, ...] = ()


@dataclass(frozen=True)
class ShownMistake:
    """A mistake as a report shows it: with a preview (a PNG data URI, or a text excerpt), or neither."""

    mistake: Mistake
    image_uri: str | None = None
    text: str | None = None


def classification_mistake(item_id: str, path: str, truth: str, predicted: str | None, confidence: float | None) -> Mistake | None:
    """The mistake of predicting ``predicted`` for an item labelled ``truth``; None when right."""
    if predicted == truth:
        return None
    if predicted is None:
        return Mistake(item_id, path, 0.0, truth, "nothing")
    score = 1.0 if confidence is None else float(confidence)
    shown = predicted if confidence is None else f"{predicted} ({float(confidence):.2f})"
    return Mistake(item_id, path, score, truth, shown)


def detection_mistake(item_id: str, path: str, truth: Sequence[TrueBox], predicted: Sequence[PredictedBox]) -> Mistake | None:
    """The mistakes on one image: true boxes no prediction of their label overlaps at IoU 0.5
    (matched greedily, most confident prediction first, as COCO does) and predictions matching
    no true box; None when every box is matched."""
    missed, false = _unmatched(truth, predicted)
    if not missed and not false:
        return None
    false_confidences = sorted((1.0 if predicted[j][2] is None else float(predicted[j][2]) for j in false), reverse=True)
    parts = []
    if missed:
        parts.append(f"{len(missed)} missed")
    if false:
        parts.append(f"{len(false)} false (top {false_confidences[0]:.2f})")
    return Mistake(
        item_id,
        path,
        len(missed) + sum(false_confidences),
        f"{len(truth)} box{'es' if len(truth) != 1 else ''}",
        ", ".join(parts),
        tuple(truth),
        tuple(predicted),
    )


def _unmatched(truth: Sequence[TrueBox], predicted: Sequence[PredictedBox]) -> tuple[list[int], list[int]]:
    """Indices of the unmatched true boxes and of the unmatched predictions."""
    matched_true: set[int] = set()
    matched_pred: set[int] = set()
    for label in {t[0] for t in truth} | {p[0] for p in predicted}:
        t_idx = [i for i, t in enumerate(truth) if t[0] == label]
        p_idx = sorted(
            (j for j, p in enumerate(predicted) if p[0] == label),
            key=lambda j: -(1.0 if predicted[j][2] is None else float(predicted[j][2])),
        )
        if not t_idx or not p_idx:
            continue
        ious = iou_matrix(np.array([predicted[j][1] for j in p_idx]), np.array([truth[i][1] for i in t_idx]))
        free = np.ones(len(t_idx), dtype=bool)
        for row, j in enumerate(p_idx):
            candidates = np.where(free & (ious[row] >= MATCH_IOU), ious[row], -1.0)
            best = int(np.argmax(candidates))
            if candidates[best] >= MATCH_IOU:
                free[best] = False
                matched_pred.add(j)
                matched_true.add(t_idx[best])
    return (
        [i for i in range(len(truth)) if i not in matched_true],
        [j for j in range(len(predicted)) if j not in matched_pred],
    )


@dataclass
class WorstMistakes:
    """The ``limit`` worst mistakes added so far (memory bounded by ``limit``, any number of items)."""

    limit: int = MAX_MISTAKES
    total: int = 0
    """How many mistakes were added in all."""
    _heap: list[tuple[float, int, Mistake]] = field(default_factory=list, repr=False)
    _order: Any = field(default_factory=itertools.count, repr=False)

    def add(self, mistake: Mistake | None) -> None:
        """Keep ``mistake`` if it is among the worst (None is ignored); ties keep the first added."""
        if mistake is None:
            return
        self.total += 1
        if self.limit <= 0:
            return
        entry = (mistake.score, -next(self._order), mistake)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
        elif entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)

    def worst(self) -> list[Mistake]:
        """The kept mistakes, worst first."""
        return [m for _, _, m in sorted(self._heap, key=lambda e: e[:2], reverse=True)]


def thumbnail_png(
    image_bytes: bytes,
    *,
    true_boxes: Iterable[TrueBox] = (),
    predicted_boxes: Iterable[PredictedBox] = (),
    side: int = THUMBNAIL_SIDE,
) -> str:
    """``image_bytes`` scaled to fit ``side`` x ``side`` (small images are enlarged, pixels kept sharp)
    with true boxes in green and predicted ones in red, as a PNG data URI.

    Box coordinates are pixels of the image as the default loader gives it (EXIF orientation
    applied). Raises ``ValueError`` when the bytes are not an image Pillow can read.
    """
    from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image_bytes)) as source:
            if source.width * source.height > _MAX_SOURCE_PIXELS:
                raise ValueError(f"image of {source.width}x{source.height} pixels is too large for a thumbnail")
            image = ImageOps.exif_transpose(source).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a readable image: {exc}") from exc
    true_boxes, predicted_boxes = list(true_boxes), list(predicted_boxes)
    scale = side / max(image.width, image.height, 1)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    for colour, boxes in ((TRUE_COLOUR, true_boxes), (PREDICTED_COLOUR, predicted_boxes)):
        for box in boxes:
            left, top, right, bottom = (float(v) * scale for v in box[1])
            right, bottom = max(left, right), max(top, bottom)
            # A white halo outside the coloured line keeps it visible on an image of the same colour.
            draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), outline=HALO_COLOUR, width=1)
            draw.rectangle((left, top, right, bottom), outline=colour, width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
