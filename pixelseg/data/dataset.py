"""The one dataset class every layout builds: a list of (image, mask) files plus how to decode them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pixelseg.data.classes import ClassInfo
from pixelseg.data.masks import LabelmeDecoder, MaskDecoder
from pixelseg.errors import DataError
from pixelseg.io import read_image

Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Sample:
    """One training example: an image file and its mask file (a Labelme JSON for Labelme datasets)."""

    image: Path | None
    mask: Path | None

    @property
    def name(self) -> str:
        return (self.image or self.mask).stem  # type: ignore[union-attr]


@dataclass(frozen=True)
class Problem:
    """Something wrong with one file of a dataset, as listed by ``pixelseg data check``."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SegmentationDataset(Dataset):
    """Pairs of images and masks with their classes.

    ``__getitem__`` returns ``(image, mask)`` tensors after ``transform``; :meth:`read` returns the
    full-resolution arrays. Augmentation randomness comes from a generator seeded by
    ``(seed, epoch, index)``, so a run is reproducible whatever the number of loader workers.
    """

    def __init__(
        self,
        samples: list[Sample],
        classes: ClassInfo,
        decoder: MaskDecoder | None = None,
        transform: Transform | None = None,
        *,
        name: str = "folder",
        root: Path | None = None,
        split: str | None = None,
        problems: list[Problem] | None = None,
        image_channels: int = 3,
        extra_channels: list[Path] | None = None,
    ) -> None:
        self.samples = samples
        self.classes = classes
        self.decoder = decoder or MaskDecoder(classes)
        self.transform = transform
        self.name = name
        self.root = root
        self.split = split
        self.problems = list(problems or [])
        self.seed = 0
        self.epoch = 0
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
        self.image_channels = image_channels  # how image files are read: 1 (grey), 3 (RGB) or 4 (RGBA)
        self.extra_channels = list(extra_channels or [])  # folders of one more grey band each, same file stems

    @property
    def channels(self) -> int:
        """The channels of the images this dataset gives (what the model's ``in_channels`` must be)."""
        return self.image_channels + len(self.extra_channels)

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (f"SegmentationDataset({self.name}, root={self.root}, split={self.split}, "
                f"{len(self)} samples, {self.classes.num_classes} classes)")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def read_image(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        if sample.image is None and isinstance(self.decoder, LabelmeDecoder):
            source = LabelmeDecoder.image_path_or_data(sample.mask)  # type: ignore[arg-type]
            return source if isinstance(source, np.ndarray) else read_image(source)
        image = read_image(sample.image, self.image_channels)  # type: ignore[arg-type]
        if not self.extra_channels:
            return image
        bands = [image]
        for folder in self.extra_channels:
            band_file = next((p for p in folder.glob(f"{sample.name}.*") if p.is_file()), None)
            if band_file is None:
                raise DataError(f"{sample.image}: no matching band in {folder}/ (no {sample.name}.* there; "
                                f"data.options.extra_channels)")
            band = read_image(band_file, 1)
            if band.shape[:2] != image.shape[:2]:
                raise DataError(f"{band_file}: {band.shape[1]}x{band.shape[0]}, but its image {sample.image} is "
                                f"{image.shape[1]}x{image.shape[0]}")
            bands.append(band)
        return np.concatenate(bands, axis=2)

    def read_mask(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        if sample.mask is None:
            raise DataError(f"{sample.image}: no mask for this image")
        return self.decoder.decode(sample.mask)

    def cache_in_memory(self, progress: bool = True) -> int:
        """Decode every image and mask now and keep them (read-only) in memory, so that later epochs skip the
        PNG/JPEG decoding; loader workers started afterwards share the arrays. Returns the bytes held."""
        from pixelseg.utils import progress_bar

        cache = {}
        for index in progress_bar(range(len(self)), progress, desc="caching decoded images"):
            arrays = self.read(index)
            for array in arrays:
                array.setflags(write=False)  # a transform that changed them in place would corrupt later epochs
            cache[index] = arrays
        self.cache = cache
        return sum(image.nbytes + mask.nbytes for image, mask in cache.values())

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Full-resolution RGB image (H, W, 3) and class-index mask (H, W), checked to match in size."""
        if self.cache is not None:
            return self.cache[index]
        image, mask = self.read_image(index), self.read_mask(index)
        if image.shape[:2] != mask.shape[:2]:
            sample = self.samples[index]
            raise DataError(
                f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {sample.image} is "
                f"{image.shape[1]}x{image.shape[0]} (width x height)"
            )
        return image, mask

    def __getitem__(self, index: int):
        image, mask = self.read(index)
        if self.transform is None:
            return torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(mask.astype(np.int64))
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.transform(image, mask, rng)
