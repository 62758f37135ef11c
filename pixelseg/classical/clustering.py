"""Colour clustering: k-means (Lloyd 1982) on the pixels' colours, optionally with their positions."""

from __future__ import annotations

import cv2
import numpy as np


def kmeans(image: np.ndarray, clusters: int = 4, spatial_weight: float = 0.0, seed: int = 0,
           attempts: int = 3) -> np.ndarray:
    """(H, W) labels 0..clusters-1, ordered by the clusters' mean brightness (darkest first).

    ``spatial_weight`` > 0 adds (row, column) scaled to 0..255 times that weight to the colour features.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    height, width = image.shape[:2]
    features = image.reshape(-1, image.shape[2]).astype(np.float32)
    if spatial_weight > 0:
        rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
        position = np.stack([rows / max(1, height - 1), columns / max(1, width - 1)], -1).reshape(-1, 2) * 255
        features = np.concatenate([features, spatial_weight * position], 1)
    clusters = max(1, min(clusters, len(features)))
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 0.5)
    _, labels, centres = cv2.kmeans(features, clusters, None, criteria, attempts, cv2.KMEANS_PP_CENTERS)
    brightness = centres[:, : image.shape[2]].mean(1)
    rank = np.empty(clusters, np.int64)
    rank[np.argsort(brightness, kind="stable")] = np.arange(clusters)
    return rank[labels.reshape(height, width)]
