"""BiSeNet v1's modules (Yu et al., ECCV 2018, Fig. 2): spatial path, attention refinement, feature fusion; and the
segmentation head both versions share."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import conv_bn_relu


def conv_bn_relu_stride(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class SpatialPath(nn.Sequential):
    """Three stride-2 conv-BN-ReLU layers to 1/8 of the input, keeping spatial detail (Fig. 2(a))."""

    def __init__(self, in_channels: int, channels: int = 128) -> None:
        super().__init__(conv_bn_relu_stride(in_channels, 64, 7, 2), conv_bn_relu_stride(64, 64, 3, 2),
                         conv_bn_relu_stride(64, 64, 3, 2), conv_bn_relu(64, channels, kernel_size=1))


class AttentionRefinement(nn.Module):
    """ARM (Fig. 2(b)): a 3x3 conv-BN-ReLU, then the features re-weighted by global pooling, 1x1 conv, BN, sigmoid."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, channels)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1, bias=False),
                                       nn.BatchNorm2d(channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.attention(x)


class ContextPath(nn.Module):
    """The encoder's 1/16 and 1/32 features through ARMs, the global average of the 1/32 features added to the
    deepest (the "tail" of Fig. 2), fused upwards to 1/8. Returns the 1/8 context and the two refined maps (for the
    auxiliary heads)."""

    def __init__(self, channels16: int, channels32: int, channels: int = 128) -> None:
        super().__init__()
        self.global_context = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(channels32, channels, kernel_size=1))
        self.arm32, self.arm16 = AttentionRefinement(channels32, channels), AttentionRefinement(channels16, channels)
        self.refine32, self.refine16 = conv_bn_relu(channels, channels), conv_bn_relu(channels, channels)

    def forward(self, features16: torch.Tensor, features32: torch.Tensor, size8) -> tuple[torch.Tensor, ...]:
        x32 = self.arm32(features32) + self.global_context(features32)
        up32 = self.refine32(resize(x32, features16.shape[-2:]))
        x16 = self.arm16(features16) + up32
        up16 = self.refine16(resize(x16, size8))
        return up16, up32, x32


class FeatureFusion(nn.Module):
    """FFM (Fig. 2(c)): concatenate both paths, conv-BN-ReLU, then ``x + x * attention`` with the attention from
    global pooling, 1x1 conv, ReLU, 1x1 conv, sigmoid."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, channels, kernel_size=1)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels // 4, 1),
                                       nn.ReLU(inplace=True), nn.Conv2d(channels // 4, channels, 1), nn.Sigmoid())

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.conv(torch.cat([spatial, context], dim=1))
        return x + x * self.attention(x)


class SegmentationHead(nn.Sequential):
    """3x3 conv-BN-ReLU, dropout 0.1, 1x1 classifier: the output head and every auxiliary / booster head."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256) -> None:
        super().__init__(conv_bn_relu(in_channels, channels), nn.Dropout2d(0.1), nn.Conv2d(channels, num_classes, 1))
