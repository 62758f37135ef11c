"""Joint image + mask augmentation. Images are resized bilinearly, masks always with nearest neighbour,
and padding of masks uses the ignore index, so no transform invents a label.

Each transform is called as ``transform(image, mask, rng)`` on an (H, W, 3) uint8 image and an (H, W) uint8
mask with a ``numpy.random.Generator``; :class:`ToTensor` ends the chain.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from pixelseg.constants import IMAGENET_MEAN, IMAGENET_STD
from pixelseg.data.classes import IGNORE_INDEX


def resize_pair(image: np.ndarray, mask: np.ndarray | None, height: int, width: int):
    channels = image.shape[2] if image.ndim == 3 else None
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    if channels and image.ndim == 2:  # OpenCV drops a single channel's axis
        image = image[..., None]
    if mask is not None:
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return image, mask


class Compose:
    def __init__(self, transforms: Sequence) -> None:
        self.transforms = list(transforms)

    def __call__(self, image, mask, rng):
        for transform in self.transforms:
            image, mask = transform(image, mask, rng)
        return image, mask


class Resize:
    """Resize by a fixed factor (``scale``) or to a fixed ``(height, width)``."""

    def __init__(self, scale: float | None = None, size: tuple[int, int] | None = None) -> None:
        self.scale, self.size = scale, size

    def __call__(self, image, mask, rng):
        if self.size is not None:
            height, width = self.size
        else:
            height = max(1, round(image.shape[0] * self.scale))
            width = max(1, round(image.shape[1] * self.scale))
        if (height, width) == image.shape[:2]:
            return image, mask
        return resize_pair(image, mask, height, width)


class RandomScale:
    """Resize by a factor drawn uniformly from ``scale_range`` (relative to the incoming size)."""

    def __init__(self, scale_range: tuple[float, float]) -> None:
        self.low, self.high = scale_range

    def __call__(self, image, mask, rng):
        factor = rng.uniform(self.low, self.high)
        height, width = max(1, round(image.shape[0] * factor)), max(1, round(image.shape[1] * factor))
        return resize_pair(image, mask, height, width)


class RandomCrop:
    """Crop ``(height, width)``; smaller inputs are padded (image with ``fill``, mask with the ignore index).

    ``class_uniform`` is the probability that the crop is centred (as far as the borders allow) on a pixel of a class
    drawn uniformly from the classes in the mask, so that a rare class is in as many crops as a common one: a per-image
    form of class-uniform sampling (Zhu et al., "Improving Semantic Segmentation via Video Propagation and Label
    Relaxation", CVPR 2019), which draws the class over the whole dataset first and then an image that holds it."""

    def __init__(self, size: tuple[int, int], fill: tuple[int, int, int] = (124, 116, 104),
                 ignore_index: int = IGNORE_INDEX, class_uniform: float = 0.0) -> None:
        self.height, self.width = size
        self.fill, self.ignore_index, self.class_uniform = fill, ignore_index, class_uniform

    def __call__(self, image, mask, rng):
        pad_bottom = max(0, self.height - image.shape[0])
        pad_right = max(0, self.width - image.shape[1])
        if pad_bottom or pad_right:
            channels = image.shape[2]
            fill = np.resize(np.asarray(self.fill, dtype=image.dtype), channels)  # any number of channels
            padded = np.empty((image.shape[0] + pad_bottom, image.shape[1] + pad_right, channels), image.dtype)
            padded[...] = fill
            padded[: image.shape[0], : image.shape[1]] = image
            image = padded
            mask = cv2.copyMakeBorder(mask, 0, pad_bottom, 0, pad_right, cv2.BORDER_CONSTANT,
                                      value=self.ignore_index)
        top, left = self._corner(mask, image.shape[0], image.shape[1], rng)
        return (image[top: top + self.height, left: left + self.width],
                mask[top: top + self.height, left: left + self.width])


    def _corner(self, mask, height: int, width: int, rng) -> tuple[int, int]:
        """The crop's top-left corner: uniform, or around a pixel of a class drawn uniformly (``class_uniform``)."""
        if mask is not None and self.class_uniform and rng.random() < self.class_uniform:
            classes = np.unique(mask)
            classes = classes[classes != self.ignore_index]
            if classes.size:
                rows, columns = np.nonzero(mask == rng.choice(classes))
                pick = int(rng.integers(rows.size))
                top = min(max(int(rows[pick]) - self.height // 2, 0), height - self.height)
                left = min(max(int(columns[pick]) - self.width // 2, 0), width - self.width)
                return top, left
        return int(rng.integers(0, height - self.height + 1)), int(rng.integers(0, width - self.width + 1))


class HorizontalFlip:
    def __init__(self, probability: float = 0.5) -> None:
        self.probability = probability

    def __call__(self, image, mask, rng):
        if rng.random() < self.probability:
            return image[:, ::-1], mask[:, ::-1]
        return image, mask


class RandomRotate90:
    """A rotation by a random multiple of 90 degrees, each of the four equally likely; with :class:`HorizontalFlip`
    it draws each of the eight symmetries of the square equally often. For images without an up: aerial tiles,
    fields seen from above, microscopy. Placed before the crop, so the crop keeps its size whatever
    the image's shape."""

    def __call__(self, image, mask, rng):
        turns = int(rng.integers(4))
        if turns == 0:
            return image, mask
        image = np.ascontiguousarray(np.rot90(image, turns, axes=(0, 1)))
        return image, None if mask is None else np.ascontiguousarray(np.rot90(mask, turns))


class ColorJitter:
    """Random brightness, contrast, saturation (factors in ``1 ± amount``) and hue shift (fraction of a turn)."""

    def __init__(self, brightness: float = 0.3, contrast: float = 0.3, saturation: float = 0.3,
                 hue: float = 0.02) -> None:
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def __call__(self, image, mask, rng):
        if image.shape[2] != 3:  # grey: brightness and contrast; more channels: the colour part is the first three
            return self._other_channels(image, mask, rng)
        pixels = self._brightness_contrast(image, rng)
        if self.saturation:
            grey = pixels.mean(axis=2, keepdims=True)
            pixels = (pixels - grey) * rng.uniform(1 - self.saturation, 1 + self.saturation) + grey
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        if self.hue:
            hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV)
            shift = int(round(rng.uniform(-self.hue, self.hue) * 180))
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
            pixels = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return pixels, mask

    def _other_channels(self, image, mask, rng):
        if image.shape[2] > 3:
            colour, _ = self(np.ascontiguousarray(image[..., :3]), mask, rng)
            return np.concatenate([colour, image[..., 3:]], axis=2), mask
        return np.clip(self._brightness_contrast(image, rng), 0, 255).astype(np.uint8), mask

    def _brightness_contrast(self, image, rng) -> np.ndarray:
        """The image as float32, scaled by a random brightness factor and stretched about its mean by a random
        contrast factor (drawn in that order)."""
        pixels = image.astype(np.float32)
        if self.brightness:
            pixels *= rng.uniform(1 - self.brightness, 1 + self.brightness)
        if self.contrast:
            mean = pixels.mean()
            pixels = (pixels - mean) * rng.uniform(1 - self.contrast, 1 + self.contrast) + mean
        return pixels


def normalise(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """An (H, W, C) uint8 image as a float (C, H, W) tensor, ``(image / 255 - mean) / std``: the one normalisation
    of training, evaluation and every inference path."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
    mean_tensor = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_tensor = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (tensor - mean_tensor) / std_tensor


def denormalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalised (N, C, H, W) images back to 0..1: the inverse of :func:`normalise`, for methods and layers that
    need the pixels' colours (CRF kernels and energies)."""
    mean_tensor = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_tensor = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return images * std_tensor + mean_tensor


def renormalise(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(N, C, H, W) pixels in 0..1 normalised again: the inverse of :func:`denormalise`, for methods that change
    the colours of a batch (photometric views, Fourier style transfer) and hand it back to the network."""
    mean_tensor = torch.tensor(mean, device=pixels.device).view(1, -1, 1, 1)
    std_tensor = torch.tensor(std, device=pixels.device).view(1, -1, 1, 1)
    return (pixels - mean_tensor) / std_tensor


class ToTensor:
    """Normalised float (3, H, W) image tensor and int64 (H, W) mask tensor."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, image, mask, rng=None):
        image_tensor = normalise(image, self.mean, self.std)
        mask_tensor = torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64)) if mask is not None else None
        return image_tensor, mask_tensor


def training_transform(crop_size: tuple[int, int], scale_range: tuple[float, float] = (0.5, 2.0),
                       base_scale: float = 1.0, flip: bool = True, color_jitter: float = 0.3,
                       mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                       class_uniform_crop: float = 0.0, rotate90: bool = False) -> Compose:
    """Random scale (around ``base_scale`` of the original size), a random multiple of 90 degrees if ``rotate90``,
    crop with padding (centred on a class drawn uniformly with probability ``class_uniform_crop``), flip, colour
    jitter."""
    low, high = scale_range
    steps: list = [RandomScale((low * base_scale, high * base_scale))]
    if rotate90:
        steps.append(RandomRotate90())
    steps.append(RandomCrop(tuple(crop_size), class_uniform=class_uniform_crop))
    if flip:
        steps.append(HorizontalFlip())
    if color_jitter:
        steps.append(ColorJitter(color_jitter, color_jitter, color_jitter, hue=0.02))
    steps.append(ToTensor(mean, std))
    return Compose(steps)


def evaluation_transform(mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Compose:
    """Full-resolution, un-augmented tensors (the model resizes internally if it predicts at another scale)."""
    return Compose([ToTensor(mean, std)])
