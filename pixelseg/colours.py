"""Label maps as colours: colour images of class maps (numpy) and overlays on the photo (OpenCV's blend)."""

from __future__ import annotations

import numpy as np

from pixelseg.data.classes import ClassInfo


def colorize(labels: np.ndarray, classes: ClassInfo) -> np.ndarray:
    """(H, W) class indices to an (H, W, 3) RGB image; the ignore index is black."""
    index = labels if labels.dtype == np.uint8 else labels.astype(np.int64) & 255  # no 8-byte copy of uint8 maps
    return classes.palette_array()[index]


OVERLAY_ROWS = 1024
"""Rows blended at a time by :func:`overlay`."""


def overlay(image: np.ndarray, labels: np.ndarray, classes: ClassInfo, alpha: float = 0.5) -> np.ndarray:
    """Blend the colour label map over the image."""
    import cv2

    from pixelseg.io import rgb_view

    image = rgb_view(image).astype(np.uint8, copy=False)  # grey or more than three channels: shown as RGB
    blended = np.empty_like(image)
    for top in range(0, image.shape[0], OVERLAY_ROWS):  # in strips: no float copy of a 100-megapixel image
        rows = slice(top, top + OVERLAY_ROWS)
        blended[rows] = cv2.addWeighted(image[rows], 1 - alpha, colorize(labels[rows], classes), alpha, 0)
    return blended
