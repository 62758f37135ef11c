"""GrabCut (Rother, Kolmogorov & Blake, SIGGRAPH 2004) through OpenCV: foreground from a box and/or scribbles."""

from __future__ import annotations

import cv2
import numpy as np


def grabcut(image: np.ndarray, box: tuple[int, int, int, int] | None = None,
            foreground: np.ndarray | None = None, background: np.ndarray | None = None, iterations: int = 5,
            max_side: int = 512, prior: np.ndarray | None = None) -> np.ndarray:
    """(H, W) mask, 1 = foreground. ``box`` (x0, y0, x1, y1) in pixels: outside is background, inside unknown.
    ``foreground`` / ``background``: boolean (H, W) scribbles that are certain. Without a box or scribbles the box
    is the image inset by 5 % on every side. ``prior``: a foreground probability (H, W) from a model; inside the
    box (or everywhere without one) pixels above 0.9 start as certain foreground, above 0.5 as probable
    foreground, the rest as probable background. Images larger than ``max_side`` are segmented downscaled and the
    mask is upsampled (nearest) to the input size.
    """
    image = np.ascontiguousarray(np.asarray(image)[..., :3] if np.asarray(image).ndim == 3
                                 else np.repeat(np.asarray(image)[..., None], 3, 2)).astype(np.uint8)
    height, width = image.shape[:2]
    if box is None and foreground is None and background is None and prior is None:
        box = (round(0.05 * width), round(0.05 * height), round(0.95 * width), round(0.95 * height))
    factor = min(1.0, max_side / max(height, width))
    small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA) if factor < 1 else image
    small_h, small_w = small.shape[:2]
    mask = np.full((small_h, small_w), cv2.GC_PR_BGD if box is None else cv2.GC_BGD, np.uint8)
    if box is not None:
        x0, y0, x1, y1 = (round(v * factor) for v in box)
        x0, x1 = sorted((max(0, min(small_w, x0)), max(0, min(small_w, x1))))
        y0, y1 = sorted((max(0, min(small_h, y0)), max(0, min(small_h, y1))))
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise ValueError(f"GrabCut box {box} is empty inside the {width}x{height} image")
        mask[y0:y1, x0:x1] = cv2.GC_PR_FGD
    if prior is not None:
        prior = np.asarray(prior, np.float32)
        if prior.shape != (height, width):
            raise ValueError(f"prior is {prior.shape}, the image {(height, width)}")
        small_prior = cv2.resize(prior, (small_w, small_h), interpolation=cv2.INTER_LINEAR) if factor < 1 else prior
        inside = mask != cv2.GC_BGD
        seeded = np.select([small_prior > 0.9, small_prior > 0.5], [cv2.GC_FGD, cv2.GC_PR_FGD], cv2.GC_PR_BGD)
        mask[inside] = seeded[inside].astype(np.uint8)
    for scribble, value in ((foreground, cv2.GC_FGD), (background, cv2.GC_BGD)):
        if scribble is not None:
            scribble = np.asarray(scribble, bool)
            if scribble.shape != (height, width):
                raise ValueError(f"scribble mask is {scribble.shape}, the image {(height, width)}")
            resized = cv2.resize(scribble.astype(np.uint8), (small_w, small_h), interpolation=cv2.INTER_NEAREST)
            mask[resized > 0] = value
    if not np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        raise ValueError("GrabCut needs some foreground: a box or foreground scribbles")
    background_model, foreground_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    if not np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        raise ValueError("GrabCut needs some background: a box smaller than the image or background scribbles")
    try:
        cv2.grabCut(small, mask, None, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error as error:
        raise ValueError(f"GrabCut failed: {str(error).strip().splitlines()[-1]}") from None
    result = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    if factor < 1:
        result = cv2.resize(result, (width, height), interpolation=cv2.INTER_NEAREST)
    return result.astype(np.int64)
