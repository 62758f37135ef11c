"""DeepLab v1's LargeFOV head and v2's ASPP-L heads (Chen et al., ICLR 2015; TPAMI 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LargeFOVBranch(nn.Sequential):
    """fc6 as a 3x3 convolution at dilation ``rate`` (1024 channels), fc7 as a 1x1 (1024), fc8 to the classes; ReLU
    and dropout 0.5 after fc6 and fc7 (DeepLab-LargeFOV, ICLR 2015, Table 2: rate 12, 20.5M parameters with VGG16)."""

    def __init__(self, in_channels: int, num_classes: int, rate: int = 12, channels: int = 1024) -> None:
        super().__init__(nn.Conv2d(in_channels, channels, 3, padding=rate, dilation=rate), nn.ReLU(inplace=True),
                         nn.Dropout2d(0.5), nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True),
                         nn.Dropout2d(0.5), nn.Conv2d(channels, num_classes, 1))


class SumOfBranches(nn.ModuleList):
    """Parallel branches whose score maps are summed (DeepLab v2's ASPP fusion, Fig. 7)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self)


def aspp_vgg(in_channels: int, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24),
             channels: int = 1024) -> SumOfBranches:
    """ASPP-L on VGG16: one fc6-fc7-fc8 branch per rate (6, 12, 18, 24), summed."""
    return SumOfBranches(LargeFOVBranch(in_channels, num_classes, rate, channels) for rate in rates)


def aspp_resnet(in_channels: int, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24)) -> SumOfBranches:
    """ASPP on ResNet-101 (the released DeepLab-v2 ResNet model): one 3x3 atrous convolution straight to the classes
    per rate, summed."""
    return SumOfBranches(nn.Conv2d(in_channels, num_classes, 3, padding=rate, dilation=rate) for rate in rates)
