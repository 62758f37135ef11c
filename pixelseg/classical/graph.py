"""Graph-based and superpixel methods, from scikit-image: Felzenszwalb & Huttenlocher (IJCV 2004), SLIC
(Achanta et al., PAMI 2012) and marker-based watershed (Beucher & Meyer 1993)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import filters, segmentation

from pixelseg.classical.threshold import grey


def felzenszwalb(image: np.ndarray, scale: float = 100.0, sigma: float = 0.8, min_size: int = 50) -> np.ndarray:
    """Regions merged along a minimum spanning tree while the edge between them is weaker than inside them."""
    return segmentation.felzenszwalb(np.asarray(image), scale=scale, sigma=sigma, min_size=min_size).astype(np.int64)


def slic(image: np.ndarray, segments: int = 200, compactness: float = 10.0) -> np.ndarray:
    """About ``segments`` compact superpixels by k-means in (colour, position) space."""
    image = np.asarray(image)
    channel_axis = -1 if image.ndim == 3 else None
    return segmentation.slic(image, n_segments=segments, compactness=compactness, start_label=0,
                             channel_axis=channel_axis).astype(np.int64)


def watershed(image: np.ndarray, markers: np.ndarray | None = None, marker_quantile: float = 0.2,
              min_distance: int = 5) -> np.ndarray:
    """Flood the gradient magnitude from ``markers`` (H, W ints, 0 = unlabelled); by default from the connected
    flat areas (Sobel magnitude in the image's lowest ``marker_quantile``) that hold a ``min_distance`` square."""
    gradient = filters.sobel(grey(image))
    if markers is None:
        flat = gradient <= np.quantile(gradient, marker_quantile)
        flat = ndimage.binary_opening(flat, structure=np.ones((min_distance, min_distance)))
        markers, found = ndimage.label(flat)
        if found == 0:
            markers = np.zeros(gradient.shape, np.int64)
            markers[gradient.shape[0] // 2, gradient.shape[1] // 2] = 1
    return (segmentation.watershed(gradient, markers) - 1).clip(min=0).astype(np.int64)
