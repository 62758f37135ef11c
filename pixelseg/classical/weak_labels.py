"""Weak labels: boxes and scribbles, drawn from full masks (to measure what they cost) or read from files, and the
training targets made from them.

- Boxes to pseudo-masks, as in "Simple Does It" (Khoreva, Benenson, Hosang, Hein & Schiele, CVPR 2017) and BoxSup
  (Dai, He & Sun, ICCV 2015): GrabCut inside each box gives the object's pixels its class; the box's other pixels
  are uncertain (ignored by the loss); outside every box is background. Smaller boxes are drawn last, so a small
  object inside a large one keeps its class.
- Scribbles as thin skeletons of each region (ScribbleSup, Lin et al., CVPR 2016, uses hand-drawn ones): class
  values on the skeleton pixels, 255 (unknown) elsewhere; the partial cross-entropy of the loss ignores the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage.morphology import skeletonize

from pixelseg.classical.grabcut import grabcut
from pixelseg.constants import IGNORE_INDEX
from pixelseg.errors import DataError
from pixelseg.metrics.confusion import ConfusionMatrix

Box = tuple[int, int, int, int, int]
"""(class, x0, y0, x1, y1): pixel corners, x1 and y1 exclusive."""


def boxes_from_mask(mask: np.ndarray, background: int = 0, ignore_index: int = IGNORE_INDEX,
                    min_pixels: int = 16) -> list[Box]:
    """One box per connected region (8-connected) of every class but the background and the ignore value."""
    boxes = []
    for c in np.unique(mask):
        if c in (background, ignore_index):
            continue
        count, _, stats, _ = cv2.connectedComponentsWithStats((mask == c).astype(np.uint8), connectivity=8)
        for x, y, w, h, area in stats[1:]:
            if area >= min_pixels:
                boxes.append((int(c), int(x), int(y), int(x + w), int(y + h)))
    return boxes


def scribbles_from_mask(mask: np.ndarray, ignore_index: int = IGNORE_INDEX, erode: int = 3) -> np.ndarray:
    """Every class's regions reduced to their skeletons (after an ``erode``-pixel erosion, so that the strokes stay
    inside the regions, as a person draws them); all other pixels unknown (``ignore_index``)."""
    scribbles = np.full(mask.shape, ignore_index, dtype=np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))
    for c in np.unique(mask):
        if c == ignore_index:
            continue
        region = (mask == c).astype(np.uint8)
        inner = cv2.erode(region, kernel) if erode else region
        skeleton = skeletonize(inner.astype(bool) if inner.any() else region.astype(bool))
        scribbles[skeleton] = c
    return scribbles


def check_boxes(boxes: list[Box], height: int, width: int, num_classes: int, source: str | Path) -> None:
    """Boxes outside the image, empty ones and unknown classes are DataErrors naming ``source``."""
    for c, x0, y0, x1, y1 in boxes:
        if not 0 <= c < num_classes:
            raise DataError(f"{source}: box class {c} is outside the {num_classes} classes")
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise DataError(f"{source}: box {[x0, y0, x1, y1]} is outside the {width}x{height} image (or empty)")


def box_pseudo_mask(image: np.ndarray, boxes: list[Box], background: int = 0, ignore_index: int = IGNORE_INDEX,
                    method: str = "grabcut") -> np.ndarray:
    """The training target of an image with boxes: GrabCut's foreground (``method="grabcut"``) or the whole box
    (``"box"``) takes the box's class, the rest of each box is ignored, outside the boxes is ``background``.

    Where a box is the whole image (no background pixels for GrabCut, such as a portrait filling the frame), the
    box's centre (half its width and height) takes the class and the rest is ignored, like Simple Does It's
    "Box^i" targets that trust only a box's inner region.
    """
    target = np.full(image.shape[:2], background, dtype=np.uint8)
    for c, x0, y0, x1, y1 in sorted(boxes, key=lambda b: -(b[3] - b[1]) * (b[4] - b[2])):
        inside = np.zeros(image.shape[:2], dtype=bool)
        inside[y0:y1, x0:x1] = True
        if method == "box" or x1 - x0 < 4 or y1 - y0 < 4:
            target[inside] = c
            continue
        target[inside] = ignore_index
        if inside.all():  # no pixel outside the box for GrabCut to learn the background from
            foreground = np.zeros_like(inside)
            foreground[(3 * y0 + y1) // 4:(y0 + 3 * y1) // 4, (3 * x0 + x1) // 4:(x0 + 3 * x1) // 4] = True
        else:
            foreground = grabcut(image, box=(x0, y0, x1, y1)).astype(bool) & inside
        target[foreground] = c
    return target


def read_boxes(path: str | Path, class_names: list[str]) -> dict[str, list[Box]]:
    """Boxes per image stem from a JSON file ``{"stem": [{"class": NAME or INDEX, "box": [x0, y0, x1, y1]}, ...]}``
    or a Labelme JSON file (its rectangle shapes, the label naming the class; the stem is the file's)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a readable JSON file of boxes ({error})") from None

    def class_index(label) -> int:
        if isinstance(label, int):
            return label
        if label not in class_names:
            raise DataError(f"{path}: box class {label!r} is not one of {', '.join(class_names)}")
        return class_names.index(label)

    if isinstance(document, dict) and "shapes" in document:  # Labelme
        boxes = []
        for shape in document["shapes"]:
            if shape.get("shape_type") == "rectangle":
                (ax, ay), (bx, by) = shape["points"]
                boxes.append((class_index(shape["label"]), round(min(ax, bx)), round(min(ay, by)),
                              round(max(ax, bx)), round(max(ay, by))))
        return {path.stem: boxes}
    if not isinstance(document, dict):
        raise DataError(f"{path}: expected an object of image stems, each with a list of boxes")
    try:
        return {stem: [(class_index(b["class"]), *(int(round(v)) for v in b["box"])) for b in entries]
                for stem, entries in document.items()}
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: every box needs \"class\" and \"box\": [x0, y0, x1, y1] ({error})") from None


class TargetQuality:
    """How weak targets stand against the full masks they replace, accumulated image by image: per class, the
    precision of the pixels they label (how often that label is right), and the share of the class's true pixels
    they leave unlabelled (255: the loss never sees them)."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.ignore_index = ignore_index
        self.matrix = ConfusionMatrix(num_classes, ignore_index)
        self.true_pixels = np.zeros(num_classes, dtype=np.int64)
        self.unlabelled = np.zeros(num_classes, dtype=np.int64)

    def update(self, target: np.ndarray, truth: np.ndarray) -> None:
        known = (truth != self.ignore_index) & (truth < len(self.true_pixels))
        labelled = target != self.ignore_index
        self.true_pixels += np.bincount(truth[known].ravel(), minlength=len(self.true_pixels))
        self.unlabelled += np.bincount(truth[known & ~labelled].ravel(), minlength=len(self.true_pixels))
        keep = known & labelled
        self.matrix.update(torch.from_numpy(target[keep].astype(np.int64)),
                           torch.from_numpy(truth[keep].astype(np.int64)))

    def summary(self, names: list[str]) -> dict:
        """``{"labelled": share of the true pixels with a target, "classes": {name: {"precision", "unlabelled"}}}``."""
        precision = self.matrix.compute()["precision"]
        share = self.unlabelled / np.maximum(self.true_pixels, 1)
        return {"labelled": float(1 - self.unlabelled.sum() / max(self.true_pixels.sum(), 1)),
                "classes": {name: {"precision": precision[c], "unlabelled": float(share[c])}
                            for c, name in enumerate(names) if self.true_pixels[c]}}

    def table(self, names: list[str]) -> str:
        """The summary as a Markdown table."""
        summary = self.summary(names)
        lines = [f"targets on {summary['labelled']:.1%} of the labelled pixels",
                 "| class | precision of its targets | left unlabelled |", "|---|---:|---:|"]
        lines += [f"| {name} | {row['precision']:.1%} | {row['unlabelled']:.1%} |"
                  for name, row in summary["classes"].items()]
        return "\n".join(lines)
