"""Graph-based and superpixel methods, from scikit-image: Felzenszwalb & Huttenlocher (IJCV 2004), SLIC
(Achanta et al., PAMI 2012) and marker-based watershed (Beucher & Meyer 1993)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import filters, morphology, segmentation

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


def watershed(image: np.ndarray, markers: np.ndarray | None = None, smoothing: float = 2.0,
              min_depth: float = 2.0) -> np.ndarray:
    """Flood the gradient magnitude of the image smoothed by a Gaussian of ``smoothing`` pixels from ``markers``
    (H, W ints, 0 = unlabelled); by default from its regional minima deeper than ``min_depth`` grey levels."""
    gradient = filters.sobel(ndimage.gaussian_filter(grey(image), smoothing) if smoothing > 0 else grey(image))
    if markers is None:
        markers, _ = ndimage.label(morphology.h_minima(gradient, min_depth))
    return (segmentation.watershed(gradient, markers) - 1).clip(min=0).astype(np.int64)
