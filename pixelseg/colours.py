"""Label maps as colours (numpy only): colour images of class maps and overlays on the photo."""

from __future__ import annotations

import numpy as np

from pixelseg.data.classes import ClassInfo


def colorize(labels: np.ndarray, classes: ClassInfo) -> np.ndarray:
    """(H, W) class indices to an (H, W, 3) RGB image; the ignore index is black."""
    return classes.palette_array()[labels.astype(np.int64) & 255]


def overlay(image: np.ndarray, labels: np.ndarray, classes: ClassInfo, alpha: float = 0.5) -> np.ndarray:
    """Blend the colour label map over the image."""
    from pixelseg.io import rgb_view

    colours = colorize(labels, classes).astype(np.float32)
    image = rgb_view(image).astype(np.float32)  # grey or more than three channels: shown as RGB
    return np.clip(image * (1 - alpha) + colours * alpha, 0, 255).astype(np.uint8)
