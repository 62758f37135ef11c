"""Segmentation before deep learning: thresholds, split-and-merge, region growing, clustering, graph-based,
superpixels, watershed and GrabCut, behind one name-to-function table.

>>> from pixelseg import classical
>>> labels = classical.segment("otsu", image)          # (H, W) int labels
>>> labels = classical.segment("slic", image, segments=300)

Each method returns regions as integer labels; they are not classes. ``pixelseg eval --method`` scores them by
giving each region the ground-truth class most of its pixels have (see :func:`pixelseg.engine.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pixelseg.classical.clustering import kmeans
from pixelseg.classical.grabcut import grabcut
from pixelseg.classical.graph import felzenszwalb, slic, watershed
from pixelseg.classical.region_growing import region_growing
from pixelseg.classical.split_merge import split_and_merge
from pixelseg.classical.threshold import adaptive, multi_otsu, otsu
from pixelseg.errors import ConfigError
from pixelseg.utils import closest

METHODS: dict[str, Callable[..., np.ndarray]] = {
    "otsu": otsu,
    "multi_otsu": multi_otsu,
    "adaptive": adaptive,
    "split_merge": split_and_merge,
    "region_growing": region_growing,
    "kmeans": kmeans,
    "felzenszwalb": felzenszwalb,
    "slic": slic,
    "watershed": watershed,
    "grabcut": grabcut,
}

LEVEL_METHODS = frozenset({"otsu", "multi_otsu", "adaptive", "kmeans", "grabcut"})
"""Methods whose labels mean the same in every image (a threshold level, a cluster by brightness, foreground)."""


def get_method(name: str) -> Callable[..., np.ndarray]:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}{closest(name, METHODS)}; methods: {', '.join(METHODS)}")
    return METHODS[name]


def segment(name: str, image: np.ndarray, **options) -> np.ndarray:
    """(H, W) int64 region labels of an RGB image by method ``name``; a bad option is a ConfigError."""
    method = get_method(name)
    try:
        return method(image, **options)
    except TypeError as error:
        raise ConfigError(f"method {name!r}: {error}") from None
    except ValueError as error:
        raise ConfigError(f"method {name!r}: {error}") from None


__all__ = ["LEVEL_METHODS", "METHODS", "adaptive", "felzenszwalb", "get_method", "grabcut", "kmeans", "multi_otsu",
           "otsu", "region_growing", "segment", "slic", "split_and_merge", "watershed"]


def predict_regions(method: str, image, **options):
    """Regions of one image (a path, PIL image or RGB array) by ``method``, as a :class:`pixelseg.inference.Prediction`
    without probabilities; the regions are numbered, not classes."""
    from pixelseg.data.classes import ClassInfo
    from pixelseg.inference import Prediction
    from pixelseg.io import as_rgb_array

    labels = segment(method, as_rgb_array(image), **options)
    count = int(labels.max()) + 1 if labels.size else 1
    return Prediction(labels, None, ClassInfo.numbered(min(count, 256)))
