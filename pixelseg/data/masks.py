"""Decoding mask files (index PNGs, RGB colour masks, Labelme JSON) into class-index maps.

Every decoder returns a (H, W) ``uint8`` array whose values are class indices or ``IGNORE_INDEX``.
Raw values that mean nothing for the dataset are an error naming the file, never silently kept.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pixelseg.data.classes import IGNORE_INDEX, ClassInfo
from pixelseg.errors import DataError
from pixelseg.io import decode_image, read_label_image

_INVALID = -1


def _colour_codes(colours: np.ndarray) -> np.ndarray:
    colours = colours.astype(np.int64)
    return (colours[..., 0] << 16) | (colours[..., 1] << 8) | colours[..., 2]


class MaskDecoder:
    """Maps raw mask values (or colours) to class indices through one lookup table.

    Args:
        classes: the dataset's classes; index masks may hold ``0..num_classes-1`` and ``classes.ignore_index``.
        value_map: raw value -> class index (or ``IGNORE_INDEX``) for datasets whose files use other ids
            (CamVid's void 11, Cityscapes labelIds, ADE20K's 0 = "other"). When given, it lists every valid value.
        void_colours: colours of RGB masks that mean "ignore" (besides the class palette).
    """

    def __init__(
        self,
        classes: ClassInfo,
        value_map: Mapping[int, int] | None = None,
        void_colours: tuple[tuple[int, int, int], ...] = (),
    ) -> None:
        self.classes = classes
        table = np.full(65536, _INVALID, dtype=np.int16)
        if value_map is None:
            table[: classes.num_classes] = np.arange(classes.num_classes)
            table[classes.ignore_index] = IGNORE_INDEX
        else:
            for raw, mapped in value_map.items():
                table[int(raw)] = mapped
        self.lookup = table
        palette = np.asarray(classes.palette, dtype=np.int64)
        voids = np.asarray(void_colours, dtype=np.int64).reshape(-1, 3)
        codes = list(_colour_codes(palette)) + list(_colour_codes(voids))
        values = list(range(classes.num_classes)) + [IGNORE_INDEX] * len(void_colours)
        order = np.argsort(codes, kind="stable")
        self.colour_codes = np.asarray(codes, dtype=np.int64)[order]
        self.colour_values = np.asarray(values, dtype=np.int64)[order]

    def invalid_values(self, raw: np.ndarray) -> list:
        """The raw values (ints, or RGB tuples for colour masks) that map to no class."""
        if raw.ndim == 3:
            codes = np.unique(_colour_codes(raw))
            known = np.isin(codes, self.colour_codes)
            return [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in codes[~known].tolist()]
        values = np.unique(raw)
        bad = values[(values < 0) | (values >= self.lookup.size)].tolist()
        inside = values[(values >= 0) & (values < self.lookup.size)]
        bad += inside[self.lookup[inside] == _INVALID].tolist()
        return sorted(bad)

    def map_raw(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Class indices of a raw mask array read from ``path``; unknown values raise :class:`DataError`."""
        bad = self.invalid_values(raw)
        if bad:
            shown = ", ".join(str(v) for v in bad[:8]) + (" ..." if len(bad) > 8 else "")
            kind = "colours not in the palette" if raw.ndim == 3 else "label values outside the classes"
            raise DataError(
                f"{path}: {kind}: {shown} (classes 0..{self.classes.num_classes - 1}, "
                f"ignore {self.classes.ignore_index})"
            )
        if raw.ndim == 3:
            codes = _colour_codes(raw)
            positions = np.searchsorted(self.colour_codes, codes)
            return self.colour_values[positions].astype(np.uint8)
        return self.lookup[raw.astype(np.int64)].astype(np.uint8)

    def read_raw(self, path: Path) -> np.ndarray:
        return read_label_image(path)

    def decode(self, path: Path) -> np.ndarray:
        return self.map_raw(self.read_raw(path), path)


def shape_mask(size: tuple[int, int], points, shape_type: str | None = None, line_width: int = 10,
               point_size: int = 5) -> np.ndarray:
    """The pixels one Labelme shape covers, drawn as Labelme itself draws them (``labelme.utils.shape_to_mask``):
    Pillow's polygon, rectangle and ellipse with a one-pixel outline included, lines ``line_width`` wide and points
    as discs of radius ``point_size``, so that masks equal labelme2voc's pixel for pixel."""
    canvas = Image.new("L", (size[1], size[0]), 0)
    draw = ImageDraw.Draw(canvas)
    xy = [(float(x), float(y)) for x, y in points]
    if shape_type == "circle":
        if len(xy) != 2:
            raise ValueError("a circle has 2 points (centre and a point on it)")
        (cx, cy), (px, py) = xy
        radius = math.hypot(cx - px, cy - py)
        draw.ellipse(((cx - radius, cy - radius), (cx + radius, cy + radius)), outline=1, fill=1)
    elif shape_type == "rectangle":
        if len(xy) != 2:
            raise ValueError("a rectangle has 2 points (opposite corners)")
        (x0, y0), (x1, y1) = xy
        draw.rectangle(((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))), outline=1, fill=1)
    elif shape_type in ("line", "linestrip"):
        draw.line(xy, fill=1, width=line_width)
    elif shape_type == "point":
        (cx, cy), radius = xy[0], point_size
        draw.ellipse(((cx - radius, cy - radius), (cx + radius, cy + radius)), outline=1, fill=1)
    elif shape_type in (None, "polygon", "oriented_rectangle"):
        if len(xy) < 3:
            raise ValueError("a polygon has more than 2 points")
        draw.polygon(xy, outline=1, fill=1)
    else:
        raise ValueError(f"shape_type {shape_type!r} is not supported")
    return np.asarray(canvas, dtype=bool)


class LabelmeDecoder(MaskDecoder):
    """Rasterises Labelme JSON polygons (and rectangles, circles) into class indices.

    Shapes are drawn in file order as Labelme draws them (:func:`shape_mask`), so a later shape covers an earlier
    one.
    Unlabelled pixels get class 0 (the background, as in labelme2voc); a shape named ``__ignore__`` is ignored.
    """

    def __init__(self, classes: ClassInfo) -> None:
        super().__init__(classes)
        self.name_to_index = {name: index for index, name in enumerate(classes.names)}

    @staticmethod
    def load_json(path: Path) -> dict:
        try:
            return json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise DataError(f"{path}: file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: not valid Labelme JSON ({error})") from None

    def read_raw(self, path: Path) -> np.ndarray:
        document = self.load_json(path)
        try:
            height, width = int(document["imageHeight"]), int(document["imageWidth"])
            shapes = document.get("shapes", [])
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{path}: Labelme JSON without imageHeight/imageWidth ({error})") from None
        mask = np.zeros((height, width), dtype=np.int32)
        for number, shape in enumerate(shapes):
            label = str(shape.get("label", ""))
            if label == "__ignore__":
                value = self.classes.ignore_index
            elif label in self.name_to_index:
                value = self.name_to_index[label]
            else:
                raise DataError(
                    f"{path}: shape {number} has label {label!r}, which is not one of the classes "
                    f"{self.classes.names}"
                )
            points = shape.get("points") or []
            if not points:
                raise DataError(f"{path}: shape {number} ({label!r}) has no points")
            try:
                drawn = shape_mask((height, width), points, shape.get("shape_type"))
            except (ValueError, TypeError) as error:
                raise DataError(f"{path}: shape {number} ({label!r}): {error}") from None
            mask[drawn] = value
        return mask

    @staticmethod
    def image_path_or_data(path: Path) -> Path | np.ndarray:
        """The image a Labelme file annotates: its ``imagePath`` beside it, else its embedded ``imageData``."""
        document = LabelmeDecoder.load_json(path)
        image_path = document.get("imagePath")
        if image_path and (path.parent / image_path).is_file():
            return path.parent / image_path
        if document.get("imageData"):
            try:
                raw = base64.b64decode(document["imageData"], validate=False)
            except ValueError:
                raise DataError(f"{path}: embedded imageData is not base64") from None
            return decode_image(raw, f"{path} (embedded imageData)")  # the one safe decoder, with its size limit
        raise DataError(f"{path}: image {image_path!r} not found beside it and no embedded imageData")
