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


def set_multi_grid(encoder, grid: Sequence[int], output_stride: int) -> None:
    """DeepLabv3's multi-grid (Section 3.2): the 3x3 convolutions of the i-th unit of the last ResNet stage get rate
    ``base * grid[i]``, ``base = 32 / output_stride`` the stage's own rate (grid (1, 2, 4) at stride 16: 2, 4, 8)."""
    stage = getattr(encoder.model, "layer4", None)
    if stage is None or len(stage) != len(grid):
        raise ConfigError(f"multi_grid needs a ResNet encoder with {len(grid)} units in its last stage")
    base = 32 // output_stride
    for block, unit in zip(stage, grid, strict=True):
        for conv in _three_by_three(block):
            conv.dilation, conv.padding = (base * unit,) * 2, (base * unit,) * 2


def _three_by_three(block: nn.Module) -> list[nn.Conv2d]:
    return [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


class CascadedBlocks(nn.Sequential):
    """DeepLabv3's cascaded modules (Section 3.2, Fig. 3): copies of the last ResNet stage (``blocks`` of them,
    block5, block6, ...) at doubling atrous rates and no further striding; each has three units built like the
    encoder's last ones, with the multi-grid unit rates."""

    def __init__(self, encoder, blocks: int, output_stride: int, grid: Sequence[int] = (1, 1, 1)) -> None:
        stage = getattr(encoder.model, "layer4", None)
        if stage is None:
            raise ConfigError("cascade_blocks needs a ResNet encoder (a timm model with layer4)")
        unit, channels = type(stage[-1]), encoder.channels[-1]
        rate = 2 * 32 // output_stride
        modules = []
        for _ in range(blocks):
            modules.append(nn.Sequential(*(unit(channels, channels // unit.expansion, dilation=rate * g,
                                                first_dilation=rate * g) for g in grid)))
            rate *= 2
        super().__init__(*modules)
