"""Checking that an image file decodes before it is imported (header, checksums and every pixel), in bounded memory."""

from __future__ import annotations

import threading
from pathlib import Path

#: An image whose decoded pixels take more bytes than this is decoded while no other such image is.
BIG_IMAGE_BYTES = 64 << 20
#: Why a file is skipped when its image does not decode (the reason follows).
BROKEN = "broken image"

_one_big_image = threading.Lock()


def image_problem(file: Path) -> str | None:
    """Why the image in ``file`` cannot be used (``broken image: ...``), or None when it decodes in full.

    Reads the header, lets Pillow verify the file (a PNG's chunk checksums, say), then decodes
    every pixel and drops them at once; JPEGs decode at reduced scale, which still reads all
    their compressed data. Big images decode one at a time.
    """
    from PIL import Image

    try:
        if file.stat().st_size == 0:
            return f"{BROKEN}: empty file (0 bytes)"
        with Image.open(file) as img:
            img.verify()
        with Image.open(file) as img:
            img.draft(None, (1, 1))  # JPEG: decode at 1/8 scale
            width, height = img.size
            if width * height * max(1, len(img.getbands())) > BIG_IMAGE_BYTES:
                with _one_big_image:
                    img.load()
            else:
                img.load()
    except Exception as exc:  # noqa: BLE001 - whatever a decoder raises, the file is reported, not the import stopped
        return _why(exc)
    return None


def image_size(file: Path) -> tuple[int, int] | str:
    """The (width, height) in the header of the image in ``file``, or why it cannot be read (``broken image: ...``)."""
    from PIL import Image

    try:
        if file.stat().st_size == 0:
            return f"{BROKEN}: empty file (0 bytes)"
        with Image.open(file) as img:
            return img.size
    except Exception as exc:  # noqa: BLE001 - the file is reported, not the import stopped
        return _why(exc)


def _why(exc: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):  # its message names only the file
        return f"{BROKEN}: not a known image format"
    return f"{BROKEN}: {str(exc) or type(exc).__name__}"
