"""Tiny images for test datasets."""

from __future__ import annotations

import io

from PIL import Image


def png_bytes(value: int, size: tuple[int, int] = (8, 8), mode: str = "L") -> bytes:
    """A flat PNG of ``size`` (width, height) with every pixel ``value`` (grey, or grey RGB)."""
    img = Image.new(mode, size, value if mode == "L" else (value, value, value))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
