"""The pyramid pooling module and PSPNet's heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.errors import ConfigError
from pixelseg.models.base import conv_bn_relu


class PyramidPoolingModule(nn.Module):
    """Pool to ``bins`` x ``bins`` grids (average, or max with ``pooling="max"``: the paper compares both, Table 1),
    reduce each to ``in/len(bins)`` channels, upsample, concatenate."""

    def __init__(self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6), pooling: str = "avg") -> None:
        super().__init__()
        if pooling not in ("avg", "max"):
            raise ConfigError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        pool = nn.AdaptiveAvgPool2d if pooling == "avg" else nn.AdaptiveMaxPool2d
        reduced = in_channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(pool(size), conv_bn_relu(in_channels, reduced, kernel_size=1))
            for size in bins
        )
        self.out_channels = in_channels + reduced * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)


class PSPHead(nn.Module):
    """Pyramid pooling, then a 3x3 conv-BN-ReLU, dropout and a 1x1 classifier."""

    def __init__(self, in_channels: int, num_classes: int, bins: Sequence[int] = (1, 2, 3, 6), channels: int = 512,
                 dropout: float = 0.1, pooling: str = "avg") -> None:
        super().__init__()
        self.ppm = PyramidPoolingModule(in_channels, bins, pooling)
        self.classifier = nn.Sequential(conv_bn_relu(self.ppm.out_channels, channels), nn.Dropout2d(dropout),
                                        nn.Conv2d(channels, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.ppm(x))


class AuxiliaryHead(nn.Sequential):
    """Deep supervision on the stage-4 features (res4b22 in the paper): 3x3 conv-BN-ReLU, dropout, 1x1."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256, dropout: float = 0.1) -> None:
        super().__init__(conv_bn_relu(in_channels, channels), nn.Dropout2d(dropout),
                         nn.Conv2d(channels, num_classes, 1))
