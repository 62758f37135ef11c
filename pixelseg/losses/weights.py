"""Class weights from class pixel frequencies, for the unbalanced datasets (CamVid, Cityscapes)."""

from __future__ import annotations

import numpy as np


def class_weights_from_counts(pixel_counts: np.ndarray, method: str = "median_frequency") -> list[float]:
    """Class weights from pixel counts.

    - ``median_frequency``: median(f) / f_c (Eigen & Fergus, ICCV 2015; used by SegNet on CamVid).
    - ``enet``: 1 / ln(1.02 + f_c) (Paszke et al., "ENet", 2016).
    - ``inverse_sqrt``: 1 / sqrt(f_c), normalised to mean 1.

    Classes with no pixels get weight 0.
    """
    counts = np.asarray(pixel_counts, dtype=np.float64)
    frequency = counts / max(counts.sum(), 1.0)
    weights = np.zeros_like(frequency)
    present = frequency > 0
    if method == "median_frequency":
        weights[present] = np.median(frequency[present]) / frequency[present]
    elif method == "enet":
        weights[present] = 1.0 / np.log(1.02 + frequency[present])
    elif method == "inverse_sqrt":
        weights[present] = 1.0 / np.sqrt(frequency[present])
        weights[present] /= weights[present].mean()
    else:
        raise ValueError(f"unknown class weighting {method!r}: use median_frequency, enet or inverse_sqrt")
    return weights.tolist()
