"""Decoding item bytes for models (images to RGB arrays, EXIF-aware; text to str), and their size in memory."""

from __future__ import annotations

import ctypes
import io
import math
import mmap
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Iterator

import numpy as np

from .errors import ValidationError

MIB = 1 << 20
_ORIENTATION = 0x0112  # the EXIF tag


#: Rows are converted and copied into the output a strip of at most about this many bytes (all its
#: copies together) at a time, so no conversion or copy of the whole image exists at once.
STRIP_BYTES = 8 * MIB
#: Bytes a strip holds per pixel besides the decoder's own: converted to RGB (4), then ``tobytes``'s chunks and their join (3 + 3).
_STRIP_PIXEL_BYTES = 4 + 3 + 3
#: Decoders that hold a whole frame of their own beside the image they fill, in frames of
#: ``width * height * 4`` bytes (libwebp keeps its canvas and returns a copy of it).
_DECODER_FRAMES = {"WEBP": 3}
#: Formats whose decoders hold only a few rows of their own (a zlib/LZW stream, a line buffer).
_STREAMING_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "PPM", "TGA", "DIB", "ICO", "PCX", "SGI", "QOI"}
#: ``Image.transpose`` of each EXIF orientation, as NumPy views of the upright array in the
#: stored image's orientation (``ImageOps.exif_transpose`` applies the same ones).
_STORED_VIEWS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}

#: ``reserve(n)``: hold ``n`` bytes (waiting for room) before a decode; returns ``settle(m)``, called
#: once afterwards with the bytes still held (the array's, 0 after a failure).
Reserve = Callable[[int], Callable[[int], None]]


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says (no pixel decoded), and the memory decoding it holds."""

    width: int
    height: int
    mode: str
    format: str
    progressive: bool
    data_bytes: int

    @property
    def array_bytes(self) -> int:
        """Bytes of the decoded ``H x W x 3`` uint8 array."""
        return self.width * self.height * 3

    @property
    def pixel_bytes(self) -> int:
        """Bytes per pixel of the decoder's image in this mode (Pillow keeps 8-bit multi-band pixels in 4 bytes)."""
        from PIL import ImageMode

        try:
            mode = ImageMode.getmode(self.mode)
        except KeyError:
            return 4
        return np.dtype(mode.typestr).itemsize if len(mode.bands) == 1 else 4

    def decode_bytes(self, *, data_copies: int = 1) -> int:
        """The most bytes decoding holds at once: ``data_copies`` of the file, the decoder's own buffer, its
        image in the source mode, the output array and one strip being converted and copied into it."""
        pixels = self.width * self.height
        if self.format in _DECODER_FRAMES:
            buffer = _DECODER_FRAMES[self.format] * 4 * pixels
        elif self.format == "JPEG" and self.progressive:  # libjpeg keeps every DCT coefficient: 2 bytes a sample, up to 4 bands
            buffer = 2 * 4 * pixels
        elif self.format in _STREAMING_FORMATS:
            buffer = 0
        else:  # e.g. TIFF: a strip or tile can be the whole image
            buffer = self.pixel_bytes * pixels
        rows = min(self.height, _strip_rows(self.width, self.pixel_bytes))
        strip = rows * self.width * (self.pixel_bytes + _STRIP_PIXEL_BYTES)
        return data_copies * self.data_bytes + buffer + self.pixel_bytes * pixels + self.array_bytes + strip

    def check_budget(self, cost: int, max_bytes: int | None, *, what: str) -> None:
        """Raise ``ValidationError`` naming ``what`` when decoding (``cost`` bytes) needs more than ``max_bytes``."""
        if max_bytes is not None and cost > max_bytes:
            raise ValidationError(
                what,
                "data",
                f"image {self.width}x{self.height} ({self.format} {self.mode}) needs {cost / MIB:.1f} MiB to decode "
                f"({self.array_bytes / MIB:.1f} MiB as an RGB array), more than the prepared_bytes_budget of {max_bytes / MIB:.1f} MiB",
            )


def _strip_rows(width: int, pixel_bytes: int) -> int:
    return max(1, STRIP_BYTES // max(1, width * (pixel_bytes + _STRIP_PIXEL_BYTES)))


#: Allocations of at least this many bytes get a mapping of their own (see ``map_large_allocations``).
LARGE_ALLOCATION = 4 * MIB
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
#: Pillow's default size of the blocks it allocates an image's memory in.
PIL_DEFAULT_BLOCK_SIZE = 16 * MIB
#: The block size the default loader gives Pillow before it decodes a larger image (see ``_map_large_images``).
PIL_BLOCK_SIZE = 64 * MIB


@cache
def map_large_allocations() -> None:
    """Have this process's allocations of ``LARGE_ALLOCATION`` bytes and more mapped on their own, so freeing
    one gives its memory back to the system at once (glibc; elsewhere nothing happens).

    A process-wide allocator setting: only for the worker processes the framework forks to read and
    decode one image at a time (``decoders``), never in the user's process; ``batch_reader``'s workers leave glibc its own
    threshold, which reuses freed buffers instead of faulting in new pages for every image. glibc raises that threshold
    itself as large blocks are freed, then serves them from per-thread arenas that keep what is
    freed. Done once per process.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION)


@cache
def _map_large_images() -> None:
    """Have Pillow allocate a large image in blocks of ``PIL_BLOCK_SIZE`` (unless its block size was changed from its default).

    A block above glibc's largest dynamic mmap threshold (32 MiB) is always mapped on its own, so
    a decoded image's memory goes back to the system when the image is freed. Pillow's default
    16 MiB blocks fall under the threshold once glibc has raised it: they then come from the
    decoding thread's malloc arena, which keeps them when freed, and images decoded on several
    threads add up (four 13000 x 13000 PNGs under a 2.5 GiB budget: peak RSS +2473 MiB with 16 MiB
    blocks, +2117 MiB with 64 MiB ones). An image's memory is the same either way; only how it is
    split into blocks changes.
    """
    from PIL import Image

    if Image.core.get_block_size() == PIL_DEFAULT_BLOCK_SIZE:  # a size someone chose is kept
        Image.core.set_block_size(PIL_BLOCK_SIZE)


def new_array(shape: tuple[int, ...]) -> np.ndarray:
    """A new uint8 array of ``shape``: one of ``LARGE_ALLOCATION`` bytes or more in a memory mapping of its own.

    Its memory goes back to the system as soon as the array is freed. From ``malloc`` it could
    come from the decoding thread's arena, which keeps it when the array is freed (on the thread
    that calls ``predict``): arrays decoded on several threads would then add up.
    """
    size = math.prod(shape)
    if size < LARGE_ALLOCATION:
        return np.empty(shape, np.uint8)
    return np.frombuffer(mmap.mmap(-1, size), np.uint8).reshape(shape)


def read_image_header(data: bytes, *, what: str = "item") -> ImageHeader:
    """The header of image ``data``; bad bytes (or too many pixels for Pillow) raise ``ValidationError``."""
    with _opened(data, what) as img:
        return _header(img, len(data))


def decode_image(
    data: bytes,
    *,
    what: str = "item",
    max_bytes: int | None = None,
    reserve: Reserve | None = None,
    allocate: Callable[[tuple[int, ...]], np.ndarray] | None = None,
) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB array; EXIF orientation applied. Bad bytes raise ``ValidationError``.

    With ``max_bytes``, an image whose decoding would hold more (``ImageHeader.decode_bytes``:
    the file, the decoder's buffers, its image, the array, a strip) raises ``ValidationError``
    before any pixel is decoded. ``reserve`` is given those bytes before decoding, and
    ``allocate(shape)`` makes the output array (``new_array`` unless given).
    """
    with _opened(data, what) as img:
        header = _header(img, len(data))
        cost = header.decode_bytes()
        header.check_budget(cost, max_bytes, what=what)
        settle = reserve(cost) if reserve is not None else None
        kept = 0
        try:
            out = _decode_rgb(img, header.pixel_bytes, allocate or new_array)
            kept = out.nbytes
            return out
        finally:
            if settle is not None:
                settle(kept)


@contextmanager
def _opened(data: bytes, what: str) -> Iterator[Any]:
    """``data`` opened by Pillow (header read), its errors raised as ``ValidationError`` naming ``what``."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValidationError(what, "data", "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            yield img
    except ValidationError:
        raise
    except UnidentifiedImageError:  # its message names only a memory address
        raise ValidationError(what, "data", f"cannot decode image: not a known image format ({len(data)} bytes starting {data[:8]!r})") from None
    except Image.DecompressionBombError as exc:  # not an OSError: Pillow refuses the pixel count itself
        raise ValidationError(what, "data", f"cannot decode image: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(what, "data", f"cannot decode image: {exc}") from None


def _header(img: Any, data_bytes: int) -> ImageHeader:
    width, height = img.size
    progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    return ImageHeader(width, height, img.mode, str(img.format or ""), progressive, data_bytes)


def _decode_rgb(img: Any, pixel_bytes: int, allocate: Callable[[tuple[int, ...]], np.ndarray]) -> np.ndarray:
    """Decode ``img`` (``pixel_bytes`` a pixel) and copy it into a new upright RGB array a strip at a time, in place
    of whole-image copies (a converted image, ``tobytes``, a transposed image)."""
    if img.width * img.height * pixel_bytes > PIL_DEFAULT_BLOCK_SIZE:
        _map_large_images()
    img.load()
    orientation = img.getexif().get(_ORIENTATION, 1)  # read after load: a PNG may carry it after the pixels
    view = _STORED_VIEWS.get(orientation, _STORED_VIEWS[1])
    width, height = img.size
    shape = (width, height, 3) if orientation in (5, 6, 7, 8) else (height, width, 3)
    out = allocate(shape)
    stored = view(out)  # ``out`` seen in the stored image's orientation: writing a strip there writes it upright
    rows = _strip_rows(width, pixel_bytes)
    for top in range(0, height, rows):
        strip = img.crop((0, top, width, min(height, top + rows)))
        if strip.mode != "RGB":
            strip = strip.convert("RGB")
        stored[top : top + strip.height] = np.asarray(strip)
        del strip
    return out


def decode_item(
    data: bytes,
    mimetype: str,
    *,
    what: str = "item",
    max_bytes: int | None = None,
    image_decoder: Callable[..., np.ndarray] = decode_image,
    reserve: Reserve | None = None,
) -> Any:
    """The default model input of an item's bytes: images to RGB arrays (``image_decoder``, ``decode_image`` unless
    given, with ``max_bytes`` and ``reserve``), text and JSON to ``str``; any other ``mimetype`` raises ``ValidationError``."""
    if mimetype.startswith("image/"):
        return image_decoder(data, what=what, max_bytes=max_bytes, reserve=reserve)
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
