"""BiSeNet v2's branches (Yu et al., IJCV 2021, Fig. 3-6, Table 1): detail branch, semantic branch (stem, gather-
and-expansion layers, context embedding) and the bilateral guided aggregation layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.bisenet.decoder import conv_bn_relu_stride, resize


def _bn(module: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(module, nn.BatchNorm2d(channels))


def _depthwise(channels: int, stride: int = 1, multiplier: int = 1) -> nn.Conv2d:
    return nn.Conv2d(channels, channels * multiplier, 3, stride, 1, groups=channels, bias=False)


class DetailBranch(nn.Sequential):
    """Three stages of 3x3 conv-BN-ReLU (64, 64, 128 channels; 2, 3, 3 layers), each starting at stride 2: wide
    and shallow, 1/8 of the input."""

    def __init__(self, in_channels: int = 3) -> None:
        layers = []
        for index, (channels, count) in enumerate(((64, 2), (64, 3), (128, 3))):
            previous = in_channels if index == 0 else layers[-1][0].out_channels
            layers += [conv_bn_relu_stride(previous if i == 0 else channels, channels, 3, 2 if i == 0 else 1)
                       for i in range(count)]
        super().__init__(*layers)


class StemBlock(nn.Module):
    """Fig. 4(a): a stride-2 conv, then (1x1 conv, stride-2 3x3 conv) beside a 3x3 max pooling, concatenated, 3x3
    conv: 1/4 of the input with 16 channels."""

    def __init__(self, in_channels: int = 3, channels: int = 16) -> None:
        super().__init__()
        self.conv = conv_bn_relu_stride(in_channels, channels, 3, 2)
        self.left = nn.Sequential(conv_bn_relu_stride(channels, channels // 2, 1),
                                  conv_bn_relu_stride(channels // 2, channels, 3, 2))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.fuse = conv_bn_relu_stride(2 * channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.fuse(torch.cat([self.left(x), self.pool(x)], dim=1))


class GatherExpansion(nn.Module):
    """Gather-and-expansion layer (Fig. 5(b), (c)): 3x3 conv, depthwise 3x3 expanding 6x (two of them, the first at
    stride 2, when downsampling), 1x1 projection; a shortcut (identity, or depthwise 3x3 stride 2 + 1x1 when
    downsampling); ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = 6) -> None:
        super().__init__()
        wide = in_channels * expansion
        layers = [conv_bn_relu_stride(in_channels, in_channels, 3),
                  _bn(_depthwise(in_channels, stride, expansion), wide)]
        if stride == 2:
            layers.append(nn.Sequential(_bn(_depthwise(wide), wide), nn.ReLU(inplace=True)))
        else:
            layers.append(nn.ReLU(inplace=True))
        layers.append(_bn(nn.Conv2d(wide, out_channels, 1, bias=False), out_channels))
        self.body = nn.Sequential(*layers)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            _bn(_depthwise(in_channels, stride), in_channels),
            _bn(nn.Conv2d(in_channels, out_channels, 1, bias=False), out_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ContextEmbedding(nn.Module):
    """Fig. 4(b): global average pooling, BN, 1x1 conv-BN-ReLU, added to the input, 3x3 conv-BN-ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(channels),
                                     conv_bn_relu_stride(channels, channels, 1))
        self.conv = conv_bn_relu_stride(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x + self.context(x))


class SemanticBranch(nn.Module):
    """Stem (1/4, 16 channels), GE stages at 1/8 (32), 1/16 (64) and 1/32 (128), context embedding. Returns the
    stages' outputs too: the booster heads train on them."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = StemBlock(in_channels, 16)
        self.stage3 = nn.Sequential(GatherExpansion(16, 32, 2), GatherExpansion(32, 32))
        self.stage4 = nn.Sequential(GatherExpansion(32, 64, 2), GatherExpansion(64, 64))
        self.stage5 = nn.Sequential(GatherExpansion(64, 128, 2), *(GatherExpansion(128, 128) for _ in range(3)))
        self.context = ContextEmbedding(128)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        stages = [self.stem(x)]
        for stage in (self.stage3, self.stage4, self.stage5):
            stages.append(stage(stages[-1]))
        return self.context(stages[-1]), stages


class BilateralGuidedAggregation(nn.Module):
    """Fig. 6: each branch guides the other at its own scale: detail (1/8) times sigmoid(upsampled semantic), and
    the downsampled detail (1/32) times sigmoid(semantic), upsampled; summed, 3x3 conv-BN-ReLU."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        self.detail_keep = nn.Sequential(_bn(_depthwise(channels), channels), nn.Conv2d(channels, channels, 1))
        self.detail_down = nn.Sequential(_bn(nn.Conv2d(channels, channels, 3, 2, 1, bias=False), channels),
                                         nn.AvgPool2d(3, 2, 1))
        self.semantic_up = _bn(nn.Conv2d(channels, channels, 3, padding=1, bias=False), channels)
        self.semantic_keep = nn.Sequential(_bn(_depthwise(channels), channels), nn.Conv2d(channels, channels, 1))
        self.fuse = conv_bn_relu_stride(channels, channels, 3)

    def forward(self, detail: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        left = self.detail_keep(detail) * torch.sigmoid(resize(self.semantic_up(semantic), detail.shape[-2:]))
        down = self.detail_down(detail)
        right = down * torch.sigmoid(resize(self.semantic_keep(semantic), down.shape[-2:]))
        return self.fuse(left + resize(right, detail.shape[-2:]))
