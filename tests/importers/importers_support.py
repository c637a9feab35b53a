"""Writing small source folders (class folders, COCO, YOLO, CSV) and running ``model-adapter`` in-process."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adapter_base.cli.main import main
from support.images import png_bytes


def write_png(path: Path, value: int = 100, size: tuple[int, int] = (8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(value, size=size, mode="RGB"))
    return path


def write_broken_images(folder: Path) -> dict[str, str]:
    """Three files with an image extension that do not decode, in ``folder``: a truncated PNG (its header
    reads), an empty file and a text file; their names and the start of the reason each is skipped for."""
    folder.mkdir(parents=True, exist_ok=True)
    noisy = Image.frombytes("RGB", (64, 64), bytes(random.Random(0).randrange(256) for _ in range(64 * 64 * 3)))
    buf = io.BytesIO()
    noisy.save(buf, format="PNG")
    (folder / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture, a note\n")
    return {
        "truncated.png": "broken image: ",
        "empty.png": "broken image: empty file (0 bytes)",
        "notes.jpg": "broken image: not a known image format",
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``model-adapter ARGV``: exit code, stdout, stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def coco_folder(root: Path, *, crowd: int = 1) -> dict[str, Any]:
    """``root/images/{a,b,c}.png`` (a, b 40x30; c 20x10) and ``root/annotations/instances.json`` with
    three boxes (two cats on a, a dog on b), ``crowd`` crowd regions on b, and c without objects."""
    for name, size in (("a.png", (40, 30)), ("b.png", (40, 30)), ("c.png", (20, 10))):
        write_png(root / "images" / name, size=size)
    anns = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 10, 5], "area": 50, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [20.5, 3, 4.5, 6], "area": 27, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 9, "bbox": [0, 0, 40, 30], "area": 1200, "iscrowd": 0},
    ]
    anns += [{"id": 10 + k, "image_id": 2, "category_id": 7, "bbox": [5, 5, 5, 5], "area": 25, "iscrowd": 1} for k in range(crowd)]
    coco = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
            {"id": 3, "file_name": "c.png", "width": 20, "height": 10},
        ],
        "annotations": anns,
        "categories": [{"id": 7, "name": "cat"}, {"id": 9, "name": "dog"}],
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances.json").write_text(json.dumps(coco))
    return coco
