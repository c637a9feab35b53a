"""Decoding item bytes for models: images to RGB arrays (EXIF-aware), text to str."""

from __future__ import annotations

import io

import numpy as np

from .errors import ValidationError


def decode_image(data: bytes, *, what: str = "item") -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array; EXIF orientation applied. Bad bytes raise ``ValidationError``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ValidationError(what, "data", "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(what, "data", f"cannot decode image: {exc}") from None


def decode_text(data: bytes, *, what: str = "item") -> str:
    """UTF-8 text (a BOM is dropped). Undecodable bytes raise ``ValidationError``."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(what, "data", f"not UTF-8 text: {exc}") from None
