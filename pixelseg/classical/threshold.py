"""Thresholding on grey levels: Otsu (1979), multi-level Otsu (Liao, Chen & Chung 2001) and adaptive (local mean)."""

from __future__ import annotations

import numpy as np
from skimage import filters


def grey(image: np.ndarray) -> np.ndarray:
    """(H, W) float grey levels 0..255 of an RGB or grey image (ITU-R 601 weights)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.float64)
    return image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def otsu(image: np.ndarray) -> np.ndarray:
    """0 below Otsu's threshold (the one that maximises the between-class variance), 1 above."""
    values = grey(image)
    if values.min() == values.max():
        return np.zeros(values.shape, np.int64)
    return (values > filters.threshold_otsu(values)).astype(np.int64)


def multi_otsu(image: np.ndarray, classes: int = 3) -> np.ndarray:
    """Labels 0..classes-1 from the classes-1 thresholds that maximise the between-class variance."""
    values = grey(image)
    if len(np.unique(values)) < classes:
        return otsu(image)
    return np.digitize(values, filters.threshold_multiotsu(values, classes=classes)).astype(np.int64)


def adaptive(image: np.ndarray, block_size: int = 51, offset: float = 0.0) -> np.ndarray:
    """1 where a pixel is brighter than the mean of its ``block_size`` neighbourhood minus ``offset``."""
    values = grey(image)
    block_size = max(3, block_size | 1)  # odd
    return (values > filters.threshold_local(values, block_size, method="mean", offset=offset)).astype(np.int64)
