"""Generate the shapes dataset: images with red rectangles and blue ellipses, written as COCO detection JSON.

``python -m examples.shapes.dataset OUT [--images N] [--seed S]`` writes ``OUT/images/<subset>/<n>.png``
and ``OUT/annotations/instances.json``; ``model-adapter dataset import OUT`` imports it with the
COCO importer (boxes, categories, image sizes; the subset comes from the ``train/``, ``val/``,
``test/`` folders).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

LABELS = ("rectangle", "ellipse")
SIZE = (96, 96)
SUBSETS = (("train", 0.7), ("val", 0.15), ("test", 0.15))


def _color(rng: np.random.Generator, label: str) -> tuple[int, int, int]:
    """A saturated red (rectangles) or blue (ellipses), a little different every time."""
    strong, weak = int(rng.integers(190, 240)), [int(v) for v in rng.integers(20, 70, size=2)]
    return (strong, weak[0], weak[1]) if label == "rectangle" else (weak[0], weak[1] + 30, strong)


def _place(rng: np.random.Generator, taken: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int] | None:
    """A free (left, top, right, bottom) box, inclusive, that may touch the other shapes."""
    for _ in range(50):
        w, h = (int(v) for v in rng.integers(12, 36, size=2))
        left, top = int(rng.integers(0, SIZE[0] - w)), int(rng.integers(0, SIZE[1] - h))
        box = (left, top, left + w - 1, top + h - 1)
        if all(box[0] > o[2] or box[2] < o[0] or box[1] > o[3] or box[3] < o[1] for o in taken):
            return box
    return None


def draw_image(rng: np.random.Generator) -> tuple[Image.Image, list[tuple[str, tuple[int, int, int, int]]]]:
    """One image on a random grey-ish noisy background with 1 to 3 shapes, and its (label, inclusive box) list."""
    grey = int(rng.integers(50, 170))
    tint = rng.integers(-15, 16, size=3)
    background = np.clip(grey + tint + rng.normal(0, 8, (SIZE[1], SIZE[0], 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    shapes: list[tuple[str, tuple[int, int, int, int]]] = []
    for _ in range(int(rng.integers(1, 4))):
        box = _place(rng, [b for _, b in shapes])
        if box is None:
            continue
        label = LABELS[int(rng.integers(0, len(LABELS)))]
        (draw.rectangle if label == "rectangle" else draw.ellipse)(box, fill=_color(rng, label))
        shapes.append((label, box))
    noisy = np.asarray(image, dtype=float) + rng.normal(0, 22, (SIZE[1], SIZE[0], 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"), shapes


def _tight(image: Image.Image, label: str, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The inclusive box as drawn (an ellipse may not reach its bounding box's last row or column)."""
    if label == "rectangle":
        return box
    mask = Image.new("1", SIZE, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=1)
    ys, xs = np.nonzero(np.asarray(mask))
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def write_shapes(out: Path, *, images: int = 120, seed: int = 0) -> Path:
    """Write ``images`` images and ``annotations/instances.json`` under ``out``; returns the annotations file."""
    rng = np.random.default_rng(seed)
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(LABELS)]}
    bounds = np.cumsum([0] + [int(round(f * images)) for _, f in SUBSETS[:-1]] + [images])
    for index in range(images):
        subset = SUBSETS[int(np.searchsorted(bounds, index, side="right")) - 1][0]
        image, shapes = draw_image(rng)
        file_name = f"{subset}/{index:04d}.png"
        (out / "images" / subset).mkdir(parents=True, exist_ok=True)
        image.save(out / "images" / file_name)
        coco["images"].append({"id": index + 1, "file_name": file_name, "width": SIZE[0], "height": SIZE[1]})
        for label, box in shapes:
            left, top, right, bottom = _tight(image, label, box)
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": index + 1,
                    "category_id": LABELS.index(label) + 1,
                    "bbox": [left, top, right - left + 1, bottom - top + 1],  # pixels left..right inclusive
                    "area": (right - left + 1) * (bottom - top + 1),
                    "iscrowd": 0,
                }
            )
    path = out / "annotations" / "instances.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.shapes.dataset", description="Write the shapes dataset as COCO JSON + PNG images.")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--images", type=int, default=120, help="how many images (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    path = write_shapes(Path(args.out), images=args.images, seed=args.seed)
    print(f"wrote {args.images} images and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
