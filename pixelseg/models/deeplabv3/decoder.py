"""ASPP, the DeepLabv3 head and the DeepLabv3+ decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.errors import ConfigError
from pixelseg.models.base import conv_bn_relu


def separable_conv_bn_relu(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    """Atrous separable convolution (DeepLabv3+): a 3x3 depthwise (dilated) conv, a 1x1 pointwise conv, BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=dilation, dilation=dilation, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ASPPPooling(nn.Module):
    """Image-level features: global average pooling, 1x1 conv, upsampled back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
                                  nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.conv(F.adaptive_avg_pool2d(x, 1))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling: a 1x1 conv, 3x3 atrous convs at ``rates`` (depthwise-separable with
    ``separable``), image pooling; fused by 1x1."""

    def __init__(self, in_channels: int, out_channels: int = 256, rates: Sequence[int] = (6, 12, 18),
                 dropout: float = 0.1, separable: bool = False) -> None:
        super().__init__()
        branches = [conv_bn_relu(in_channels, out_channels, kernel_size=1)]
        branches += [separable_conv_bn_relu(in_channels, out_channels, rate) if separable
                     else conv_bn_relu(in_channels, out_channels, dilation=rate) for rate in rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(conv_bn_relu(out_channels * len(branches), out_channels, kernel_size=1),
                                     nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3PlusDecoder(nn.Module):
    """Separable ASPP on the deep features, upsampled 4x and fused with 48-channel low-level (stride-4) features
    through two 3x3 separable convs (``fuse_convs``). ``aspp_conv=True`` adds a 3x3 separable conv after the ASPP
    projection, at 1/16 scale; with ``fuse_convs=1`` that is segmentation_models_pytorch's layout (the same
    parameters, the second conv moved from 1/4 to 1/16 scale)."""

    def __init__(self, high_channels: int, low_channels: int, rates: Sequence[int], channels: int = 256,
                 low_level_channels: int = 48, aspp_conv: bool = False, fuse_convs: int = 2) -> None:
        super().__init__()
        if fuse_convs < 1:
            raise ConfigError(f"fuse_convs must be at least 1, got {fuse_convs}")
        aspp = ASPP(high_channels, channels, rates, separable=True)
        self.aspp = nn.Sequential(aspp, separable_conv_bn_relu(channels, channels)) if aspp_conv else aspp
        self.reduce_low = conv_bn_relu(low_channels, low_level_channels, kernel_size=1)
        self.fuse = nn.Sequential(separable_conv_bn_relu(channels + low_level_channels, channels),
                                  *(separable_conv_bn_relu(channels, channels) for _ in range(fuse_convs - 1)))
        self.out_channels = channels

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        x = self.aspp(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, self.reduce_low(low)], dim=1))


class DeepLabV3Decoder(nn.Module):
    """DeepLabv3 head: ASPP, then a 3x3 conv-BN-ReLU (as in the reference implementation)."""

    def __init__(self, in_channels: int, rates: Sequence[int], channels: int = 256) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, channels, rates)
        self.conv = conv_bn_relu(channels, channels)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.aspp(x))
