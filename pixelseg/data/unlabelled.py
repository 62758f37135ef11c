"""A folder of images without labels, for the training methods that learn from them (semi-supervised training,
domain adaptation): each item is a weakly augmented view and the mask of its valid (not padded) pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pixelseg.constants import IGNORE_INDEX
from pixelseg.errors import DataError
from pixelseg.io import list_images, read_image, read_label_image


def looks_like_a_mask(path: Path, num_classes: int) -> bool:
    """A single-band (grey or palette) image with no more distinct values than classes + the ignore value: a label
    mask put among the images by mistake."""
    array = read_label_image(path)  # pixelseg's one decoder (its pixel limit), no conversion
    if array.ndim != 2:
        return False
    values = np.unique(array)
    return len(values) <= num_classes + 1 and all(v < num_classes or v == IGNORE_INDEX for v in values)


class UnlabelledImages(torch.utils.data.Dataset):
    """The images directly inside ``folder``, read with ``channels`` channels; ``transform(image, mask, rng)`` is a
    training transform (pixelseg.data.transforms), given an all-zero mask so that its padding marks the invalid
    pixels. Items: ``(image tensor, valid mask)``; the randomness follows ``(seed, epoch, index)``."""

    def __init__(self, folder: str | Path, num_classes: int, channels: int = 3, transform=None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError(f"data.unlabelled: {self.folder} is not a folder of images")
        self.paths = list_images(self.folder)
        if not self.paths:
            raise DataError(f"data.unlabelled: {self.folder} holds no images")
        for path in self.paths[:50]:
            if looks_like_a_mask(path, num_classes):
                raise DataError(f"data.unlabelled: {path} looks like a label mask ({num_classes} classes), not an "
                                "image: give a folder of images only")
        self.channels, self.transform, self.seed, self.epoch = channels, transform, 0, 0

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int):
        image = read_image(self.paths[index], self.channels)
        mask = np.zeros(image.shape[:2], dtype=np.uint8)
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        tensor, mask = self.transform(image, mask, rng)
        return tensor, mask != IGNORE_INDEX
