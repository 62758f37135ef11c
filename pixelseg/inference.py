"""Full-resolution inference: optional rescaling, optional sliding window, probabilities at input size.

It needs only a module that maps normalised images to logits and has the ``meta`` of a pixelseg model; it imports
no architecture, so :mod:`pixelseg.models` can offer ``model.predict`` through it without an import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pixelseg.colours import colorize, overlay
from pixelseg.crf import DenseCRF
from pixelseg.data.classes import ClassInfo
from pixelseg.data.transforms import normalise as normalise_image
from pixelseg.io import as_image_array

if TYPE_CHECKING:
    from pixelseg.models.base import SegmentationModel


def input_channels(model) -> int:
    """The channels a model takes (its ``in_channels``; 3 unless built otherwise)."""
    return int(getattr(model, "config", {}).get("in_channels", 3))


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (the CPU for a model without torch weights, such as an ONNX one)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def normalise(image: np.ndarray, mean, std) -> torch.Tensor:
    """(H, W, 3) uint8 to a normalised (1, 3, H, W) float tensor (:func:`pixelseg.data.transforms.normalise`)."""
    return normalise_image(image, mean, std).unsqueeze(0)


def _window_starts(length: int, window: int, stride: int) -> list[int]:
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride)) + [length - window]
    return sorted(set(starts))


def window_positions(height: int, width: int, tile: tuple[int, int], overlap: float) -> list[tuple[int, int]]:
    """Top-left corners of the tiles that cover a ``height`` x ``width`` image with the given overlap."""
    tile_h, tile_w = min(tile[0], height), min(tile[1], width)
    stride_h = max(1, math.ceil(tile_h * (1 - overlap)))
    stride_w = max(1, math.ceil(tile_w * (1 - overlap)))
    return [(top, left) for top in _window_starts(height, tile_h, stride_h)
            for left in _window_starts(width, tile_w, stride_w)]


def sliding_window_logits(model: SegmentationModel, images: torch.Tensor, tile: tuple[int, int],
                          overlap: float = 0.33, window_batch: int | None = None) -> torch.Tensor:
    """Logits from overlapping tiles averaged with weights that fall off towards each tile's border.

    Up to ``window_batch`` tiles (of every image in the batch) go through the network in one forward pass; the
    default is 4 on a GPU and 1 on the CPU, where batching windows measured 3-9 % slower (docs/performance.md).
    """
    if window_batch is None:
        window_batch = 4 if images.device.type == "cuda" else 1
    batch, _, height, width = images.shape
    tile_h, tile_w = min(tile[0], height), min(tile[1], width)
    weight = hann_weight(tile_h, tile_w, images.device)
    positions = window_positions(height, width, tile, overlap)
    logits = None
    total = torch.zeros(height, width, device=images.device)
    for first in range(0, len(positions), max(1, window_batch)):
        chunk = positions[first: first + max(1, window_batch)]
        crops = torch.cat([images[:, :, top: top + tile_h, left: left + tile_w] for top, left in chunk])
        windows = model(crops).float()
        if logits is None:
            logits = torch.zeros(batch, windows.shape[1], height, width, device=images.device)
        for index, (top, left) in enumerate(chunk):
            window = windows[index * batch: (index + 1) * batch]
            logits[:, :, top: top + tile_h, left: left + tile_w] += window * weight
            total[top: top + tile_h, left: left + tile_w] += weight
    return logits / total


AUTO_TILE_PIXELS = 2048 * 2048
"""Inputs larger than this (at the network's scale) go through the sliding window even when no tile is asked for:
one forward pass over the whole of a 20-megapixel image would need tens of GB for the decoder's activations."""
AUTO_TILE = (1024, 1024)


def _logits_at_scale(model: SegmentationModel, images: torch.Tensor, scale: float, tile: tuple[int, int] | None,
                     overlap: float) -> torch.Tensor:
    height, width = images.shape[-2:]
    if scale != 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    if tile is None and images.shape[-2] * images.shape[-1] > AUTO_TILE_PIXELS:
        tile = AUTO_TILE  # memory bounded by one tile's activations
    logits = sliding_window_logits(model, images, tile, overlap) if tile else model(images).float()
    if logits.shape[-2:] != (height, width):
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits


def hann_weight(tile_h: int, tile_w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The sliding window's per-pixel weight: a Hann ramp falling towards each tile's border (never 0)."""
    ramp_h = torch.hann_window(tile_h + 2, periodic=False, device=device)[1:-1]
    ramp_w = torch.hann_window(tile_w + 2, periodic=False, device=device)[1:-1]
    return (ramp_h[:, None] * ramp_w[None, :]).clamp_min(1e-3)


@torch.inference_mode()
def predict_in_strips(model: SegmentationModel, array: np.ndarray, scale: float, tile: tuple[int, int],
                      overlap: float = 0.33) -> np.ndarray:
    """The class map of a large image, one row of tiles after the other: memory holds the image, its class map
    (one byte a pixel) and the logits of one row of tiles, never the whole probability volume (C x H x W floats:
    4.4 GB for 10,000 x 10,000 pixels and 11 classes). The tiles and their weights are those of
    :func:`sliding_window_logits`; at a scale other than 1 the class map is resized to the image (nearest)."""
    height, width = array.shape[:2]
    small = array
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(array, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        small = small.reshape(size[1], size[0], -1)
    h, w = small.shape[:2]
    tile_h, tile_w = min(tile[0], h), min(tile[1], w)
    device, mean, std = model_device(model), model.meta["mean"], model.meta["std"]
    weight = hann_weight(tile_h, tile_w, device)
    tops = _window_starts(h, tile_h, max(1, math.ceil(tile_h * (1 - overlap))))
    lefts = _window_starts(w, tile_w, max(1, math.ceil(tile_w * (1 - overlap))))
    labels = np.empty((h, w), np.uint8 if model.classes.num_classes <= 256 else np.int64)
    band, total, band_top = None, torch.zeros(tile_h, w, device=device), 0
    for top in [*tops, h]:  # h: flush the last rows
        done = top - band_top  # rows no later tile covers
        if band is not None and done > 0:
            finished = (band[:, :done] / total[:done]).argmax(dim=0)
            labels[band_top:top] = finished.cpu().numpy()
            band, total = band.roll(-done, dims=1), total.roll(-done, dims=0)
            band[:, -done:], total[-done:] = 0, 0
        band_top = top
        if top == h:
            break
        for left in lefts:
            crop = normalise(small[top: top + tile_h, left: left + tile_w], mean, std).to(device)
            logits = model(crop).float()[0]
            if band is None:
                band = torch.zeros(logits.shape[0], tile_h, w, device=device)
            band[:, :, left: left + tile_w] += logits * weight
            total[:, left: left + tile_w] += weight
    if (h, w) != (height, width):  # nearest neighbour by index: any label dtype, no float copy
        rows, columns = np.arange(height) * h // height, np.arange(width) * w // width
        labels = labels[rows[:, None], columns[None, :]]
    return labels


@torch.inference_mode()
def predict_logits(model: SegmentationModel, images: torch.Tensor, scale: float = 1.0,
                   tile: tuple[int, int] | None = None, overlap: float = 0.33, flip: bool = False,
                   scales: Sequence[float] = (1.0,)) -> torch.Tensor:
    """Logits at the input's full resolution; the network sees the input resized by ``scale``.

    Test-time augmentation: ``scales`` multiplies ``scale`` (e.g. (0.75, 1, 1.25)) and ``flip`` adds mirrored
    inputs, which share each scale's forward pass (one batch of the images and their mirrors); the class
    probabilities of all passes are averaged and returned as log-probabilities.
    """
    if not flip and tuple(scales) == (1.0,):
        return _logits_at_scale(model, images, scale, tile, overlap)
    batch = images.shape[0]
    total = None
    for factor in scales:
        inputs = torch.cat([images, images.flip(-1)]) if flip else images
        probabilities = _logits_at_scale(model, inputs, scale * factor, tile, overlap).softmax(1)
        if flip:
            probabilities = probabilities[:batch] + probabilities[batch:].flip(-1)
        total = probabilities if total is None else total + probabilities
    return torch.log(total / (len(scales) * (2 if flip else 1)) + 1e-12)


@dataclass
class Prediction:
    """A class (or region) map (H, W) for one image, with class probabilities (C, H, W) where a model gave them."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    classes: ClassInfo

    def colorize(self) -> np.ndarray:
        return colorize(self.labels, self.classes)

    def overlay(self, image: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        return overlay(image, self.labels, self.classes, alpha)


def inference_rule(model: SegmentationModel, scale: float | None = None) -> tuple[float | None, int | None]:
    """How images are sized for the network, as ``(scale, long_side)`` with one of the two set: ``scale`` when
    given, else the model's ``inference_long_side`` (the longer side resized to it: a model trained on photos of one
    size, such as the portrait model, sees a 4000-pixel photo as it saw its training images), else its
    ``inference_scale`` (the training data's ``base_scale``)."""
    if scale is not None:
        return scale, None
    if model.meta.get("inference_long_side"):
        return None, int(model.meta["inference_long_side"])
    return model.meta.get("inference_scale", 1.0), None


def inference_scale(model: SegmentationModel, height: int, width: int, scale: float | None = None) -> float:
    """The fraction of its size an image of ``height`` x ``width`` is predicted at (:func:`inference_rule`)."""
    fixed, long_side = inference_rule(model, scale)
    return fixed if long_side is None else float(long_side) / max(height, width, 1)


def predict_image(model: SegmentationModel, image, scale: float | None = None, tile: tuple[int, int] | None = None,
                  overlap: float = 0.33, crf: DenseCRF | None = None, flip: bool = False,
                  scales: Sequence[float] = (1.0,), probabilities: bool = True) -> Prediction:
    """Predict one image (a path, PIL image or RGB array) at its full resolution.

    ``scale`` defaults to the scale the model was trained at (:func:`inference_scale`); ``crf`` refines
    the probabilities with the image's colours (dense CRF); ``flip`` and ``scales``: test-time augmentation
    (see :func:`predict_logits`). ``probabilities=False``: only the class map is wanted, so a tiled prediction (a
    ``tile``, or an image above :data:`AUTO_TILE_PIXELS` at the network's scale) goes through
    :func:`predict_in_strips`, whose memory does not grow with the number of classes times the pixels.
    """
    array = as_image_array(image, input_channels(model))
    model.eval()
    scale = inference_scale(model, array.shape[0], array.shape[1], scale)
    plain = crf is None and not flip and tuple(scales) == (1.0,)
    tiled = tile is not None or array.shape[0] * array.shape[1] * scale * scale > AUTO_TILE_PIXELS
    if not probabilities and plain and tiled:
        labels = predict_in_strips(model, array, scale, tile or AUTO_TILE, overlap)
        return Prediction(labels, None, model.classes)
    tensor = normalise(array, model.meta["mean"], model.meta["std"]).to(model_device(model))
    logits = predict_logits(model, tensor, scale, tile, overlap, flip, scales)
    probabilities = logits.softmax(dim=1)[0]
    if crf is not None:
        probabilities = crf(array, probabilities)
    labels = probabilities.argmax(dim=0).to(torch.uint8 if probabilities.shape[0] <= 256 else torch.int64)
    return Prediction(labels.cpu().numpy(), probabilities.cpu().numpy(), model.classes)
