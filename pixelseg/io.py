"""Reading images and masks safely, and writing outputs atomically.

Every reader turns a library exception into a :class:`DataError` that names the file; every writer
writes to a temporary file in the destination folder and renames it, so a crash never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pixelseg.errors import DataError

# A decompression bomb is refused rather than allowed to eat the machine's memory.
MAX_IMAGE_PIXELS = 40_000 * 40_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _open(source: Path | io.BytesIO, name: str | Path, max_pixels: int | None = None) -> Image.Image:
    try:
        image = Image.open(source)
        if max_pixels is not None and image.size[0] * image.size[1] > max_pixels:
            raise DataError(f"{name}: refused, {image.size[0]}x{image.size[1]} pixels is more than the limit of "
                            f"{max_pixels:,}")
        image.load()
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except Image.DecompressionBombError as error:
        raise DataError(f"{name}: refused, image too large ({error})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"{name}: not a readable image ({error})") from None
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as an RGB ``uint8`` array of shape (H, W, 3).

    EXIF orientation is applied; grayscale, palette, RGBA, CMYK and 16-bit images are converted.
    """
    path = Path(path)
    return _to_rgb(_open(path, path))


def decode_image(data: bytes, name: str = "upload", max_pixels: int | None = None) -> np.ndarray:
    """:func:`read_image` for bytes in memory (an upload); ``max_pixels`` refuses larger images before decoding."""
    return _to_rgb(_open(io.BytesIO(data), name, max_pixels))


def _to_rgb(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.max() > 0 else 1.0
        image = Image.fromarray((array * (255.0 / top)).astype(np.uint8))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def read_label_image(path: str | Path) -> np.ndarray:
    """Read a mask file without any conversion: (H, W) index values, or (H, W, 3) for RGB colour masks.

    Palette (``P``) PNGs give their indices, not their colours.
    """
    path = Path(path)
    image = _open(path, path)
    if image.mode in ("P", "L", "I;16", "I;16B", "I;16L", "I"):
        return np.asarray(image).astype(np.int64 if image.mode.startswith("I") else np.uint8)
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("RGB", "RGBA"):
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if image.mode == "LA":
        return np.asarray(image.getchannel(0), dtype=np.uint8)
    raise DataError(f"{path}: unsupported mask mode {image.mode!r} (use an index PNG or an RGB colour mask)")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; on success rename it over ``destination``."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp" + destination.suffix, dir=destination.parent
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        with open(temporary_path, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(temporary_path, destination)
    finally:
        temporary_path.unlink(missing_ok=True)


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write an array ((H, W) uint8 or uint16, (H, W, 3) RGB or (H, W, 4) RGBA uint8) as an image atomically, in
    the format its suffix names."""
    image = Image.fromarray(np.ascontiguousarray(array))
    path = Path(path)
    with atomic_path(path) as temporary:
        image.save(temporary, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
