"""Decoding item bytes for models (images to RGB arrays, EXIF-aware; text to str), and their size in memory."""

from __future__ import annotations

import io
import sys
from typing import Any, Callable

import numpy as np

from .errors import ValidationError

MIB = 1 << 20


def decode_image(data: bytes, *, what: str = "item", max_bytes: int | None = None) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array; EXIF orientation applied. Bad bytes raise ``ValidationError``.

    With ``max_bytes``, an image whose decoded array would be larger raises
    ``ValidationError`` before any pixel is decoded (its header gives the size).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ValidationError(what, "data", "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if max_bytes is not None and width * height * 3 > max_bytes:
                raise ValidationError(
                    what,
                    "data",
                    f"image {width}x{height} decodes to {width * height * 3 / MIB:.1f} MiB, more than the "
                    f"prepared_bytes_budget of {max_bytes / MIB:.1f} MiB",
                )
            ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of an upright image
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            return np.asarray(rgb)
    except ValidationError:
        raise
    except UnidentifiedImageError:  # its message names only a memory address
        raise ValidationError(what, "data", f"cannot decode image: not a known image format ({len(data)} bytes starting {data[:8]!r})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(what, "data", f"cannot decode image: {exc}") from None


def decode_item(
    data: bytes,
    mimetype: str,
    *,
    what: str = "item",
    max_bytes: int | None = None,
    image_decoder: Callable[..., np.ndarray] = decode_image,
) -> Any:
    """The default model input of an item's bytes: images to RGB arrays (``image_decoder``, ``decode_image`` unless
    given), text and JSON to ``str``; any other ``mimetype`` raises ``ValidationError``."""
    if mimetype.startswith("image/"):
        return image_decoder(data, what=what, max_bytes=max_bytes)
    if mimetype.startswith("text/") or mimetype == "application/json":
        return decode_text(data, what=what)
    raise ValidationError(what, "mimetype", f"no default preparation for {mimetype!r}; override prepare_item_func")


def decode_text(data: bytes, *, what: str = "item") -> str:
    """UTF-8 text (a BOM is dropped). Undecodable bytes raise ``ValidationError``."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(what, "data", f"not UTF-8 text: {exc}") from None


def nbytes(value: Any, _depth: int = 0) -> int:
    """About how many bytes a prepared model input holds.

    Arrays and tensors count their buffer (``nbytes``); tuples, lists and dicts the sum of
    their parts (three levels deep); anything else ``sys.getsizeof``.
    """
    size = getattr(value, "nbytes", None)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return int(size)
    if _depth < 3 and isinstance(value, (tuple, list)):
        return sys.getsizeof(value) + sum(nbytes(v, _depth + 1) for v in value)
    if _depth < 3 and isinstance(value, dict):
        return sys.getsizeof(value) + sum(nbytes(v, _depth + 1) for v in value.values())
    return sys.getsizeof(value)
