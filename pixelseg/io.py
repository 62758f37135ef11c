"""Reading images and masks safely, and writing outputs atomically.

Every reader turns a library exception into a :class:`DataError` that names the file; every writer
writes to a temporary file in the destination folder and renames it, so a crash never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pixelseg.errors import CheckpointError, DataError, UnsafeFileError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

PILLOW_MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Pillow's own decompression-bomb threshold (about 89.5 million pixels), read and never changed: pixelseg leaves
Pillow's process-wide setting alone and enforces its own limit in :func:`_open`."""


def max_image_pixels() -> int:
    """The largest image pixelseg decodes: ``$PIXELSEG_MAX_IMAGE_PIXELS``, default Pillow's threshold. Larger
    images are refused from their header, before any pixel is decoded (Pillow itself refuses twice its threshold
    whatever this says)."""
    value = os.environ.get("PIXELSEG_MAX_IMAGE_PIXELS")
    if not value:
        return PILLOW_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise DataError(f"PIXELSEG_MAX_IMAGE_PIXELS={value!r}: expected a whole number of pixels") from None
    if limit <= 0:
        raise DataError(f"PIXELSEG_MAX_IMAGE_PIXELS={value!r}: expected a positive number of pixels")
    return limit


def _open(source: Path | io.BytesIO, name: str | Path, max_pixels: int | None = None) -> Image.Image:
    """The one decoder every image pixelseg reads goes through: size checked from the header, then decoded."""
    limit = min(max_pixels, max_image_pixels()) if max_pixels else max_image_pixels()
    try:
        with warnings.catch_warnings():  # pixelseg's own limit below replaces Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
        width, height = image.size
        if width * height > limit:
            raise DataError(f"{name}: refused, {width}x{height} pixels is more than the limit of {limit:,} pixels "
                            f"(PIXELSEG_MAX_IMAGE_PIXELS)")
        image.load()
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except Image.DecompressionBombError as error:  # Pillow's own check, at twice its threshold, came first
        size = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(size.group(1)):,} pixels" if size else "the image"
        raise DataError(f"{name}: refused, {pixels} is more than the limit of {limit:,} pixels "
                        f"(PIXELSEG_MAX_IMAGE_PIXELS)") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (the format is not recognised)") from None
    except (OSError, ValueError, SyntaxError) as error:
        detail = str(error) if isinstance(source, Path) else type(error).__name__  # no object reprs of uploads
        raise DataError(f"{name}: not a readable image ({detail})") from None
    return image


CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
"""What an image file is read as, by the number of channels a model takes (4: RGB + a fourth band, e.g. NIR)."""


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image as a ``uint8`` array of shape (H, W, channels): RGB by default, grey for 1, RGBA for 4.

    EXIF orientation is applied; grayscale, palette, RGBA, CMYK and 16-bit images are converted.
    """
    path = Path(path)
    if channels not in CHANNEL_MODES:
        raise DataError(f"{path}: images are read with 1, 3 or 4 channels, not {channels}")
    return _to_array(_open(path, path), CHANNEL_MODES[channels])


def decode_image(data: bytes, name: str = "upload", max_pixels: int | None = None) -> np.ndarray:
    """:func:`read_image` for bytes in memory (an upload); ``max_pixels`` refuses larger images before decoding."""
    return _to_rgb(_open(io.BytesIO(data), name, max_pixels))


def _to_rgb(image: Image.Image) -> np.ndarray:
    return _to_array(image, "RGB")


def _to_array(image: Image.Image, mode: str) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.max() > 0 else 1.0
        image = Image.fromarray((array * (255.0 / top)).astype(np.uint8))
    if image.mode != mode:
        image = image.convert(mode)
    array = np.asarray(image, dtype=np.uint8).copy()
    return array[..., None] if array.ndim == 2 else array


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


PNG_OPTIONS = {"compress_level": 1}
"""zlib level 1: a 600x800 RGBA cutout encodes in 59 ms instead of 289 ms at Pillow's default 6, 14 % larger
(scripts/bench_cutout.py measures the stage)."""


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write an array ((H, W) uint8 or uint16, (H, W, 3) RGB or (H, W, 4) RGBA uint8) as an image atomically, in
    the format its suffix names (PNG with :data:`PNG_OPTIONS`)."""
    image = Image.fromarray(np.ascontiguousarray(array))
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    with atomic_path(path) as temporary:
        image.save(temporary, format=image_format, **(PNG_OPTIONS if image_format == "PNG" else {}))


def encode_png(array: np.ndarray) -> bytes:
    """An array as PNG bytes (with :data:`PNG_OPTIONS`), as :func:`write_image` writes it."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", **PNG_OPTIONS)
    return buffer.getvalue()


def label_image(labels: np.ndarray) -> np.ndarray:
    """A label map as a PNG-writable array: 8-bit, or 16-bit where there are more than 256 classes or regions."""
    return labels.astype(np.uint8 if labels.size == 0 or labels.max() < 256 else np.uint16)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def load_torch_file(path: str | Path, map_location="cpu"):
    """``torch.load`` that never runs code from the file: PyTorch's ``weights_only`` unpickler, which builds only
    tensors, containers and plain numbers and strings, refuses everything else (a pickle that would call a function,
    import a module or build an object) with an UnpicklingError.

    numpy arrays of plain dtypes are allowed besides (pixelseg checkpoints before version 0.2 kept numpy's RNG state
    as an array); their reconstruction calls no code from the file.
    """
    import pickle

    import torch

    path = Path(path)
    numpy_globals = [np.ndarray, np.dtype, np.dtypes.UInt32DType, np.dtypes.Float64DType, np.dtypes.Int64DType]
    reconstruct = getattr(np, "_core", np.core).multiarray._reconstruct
    try:
        with torch.serialization.safe_globals([reconstruct, *numpy_globals]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except pickle.UnpicklingError as error:
        text = str(error)
        refused = next((line.strip() for line in text.splitlines() if "GLOBAL" in line), None)
        if refused is None:  # not a pickle at all, or a damaged one
            raise CheckpointError(f"{path}: not a readable checkpoint (not a PyTorch file, or a damaged one)"
                                  ) from None
        raise UnsafeFileError(f"{path}: refused to load: the file holds more than tensors and plain data, and "
                              f"loading it could run code ({refused[:200]}). Only load files you trust through "
                              f"torch.load(..., weights_only=False) yourself, then save their state dict again"
                              ) from None


def read_checkpoint(path: str | Path, required: tuple[str, ...], kind: str = "pixelseg checkpoint",
                    map_location="cpu") -> dict:
    """A ``.pt`` file's dict, read without running code from it; it must hold the ``required`` entries."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = load_torch_file(path, map_location=map_location)
    except (UnsafeFileError, CheckpointError):
        raise
    except Exception as error:  # noqa: BLE001 - any failure means an unreadable checkpoint
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a {kind} (a {type(state).__name__}, not a dict)")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a {kind} (no {' and no '.join(map(repr, missing))} entry)")
    return state


def as_image_array(image, channels: int = 3) -> np.ndarray:
    """A path, PIL image or array as an (H, W, channels) ``uint8`` array for a model that takes ``channels``."""
    if channels == 3:
        return as_rgb_array(image)
    if isinstance(image, (str, Path)):
        return read_image(image, channels)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert(CHANNEL_MODES.get(channels, "RGB")))
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] != channels:
        raise DataError(f"expected an image array (H, W, {channels}) for this model, got shape {array.shape}")
    return np.ascontiguousarray(array).astype(np.uint8)


def rgb_view(image: np.ndarray) -> np.ndarray:
    """An (H, W, C) image as RGB for pictures: grey repeated, the first three of more channels."""
    if image.ndim == 2 or image.shape[2] == 1:
        return np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def as_rgb_array(image) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB image array (H, W, 3), got shape {array.shape}")
    return np.ascontiguousarray(array[..., :3]).astype(np.uint8)
