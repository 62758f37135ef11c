"""UPerNet's head: a pyramid pooling module on the last level and an FPN over all levels, fused at stride 4."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import conv_bn_relu


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class UPerHead(nn.Module):
    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int = 512,
                 bins: Sequence[int] = (1, 2, 3, 6), dropout: float = 0.1) -> None:
        super().__init__()
        top = in_channels[-1]
        self.pools = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(size), conv_bn_relu(top, channels, 1))
                                   for size in bins)
        self.ppm_bottleneck = conv_bn_relu(top + len(bins) * channels, channels)
        self.laterals = nn.ModuleList(conv_bn_relu(c, channels, 1) for c in in_channels[:-1])
        self.fpn_convs = nn.ModuleList(conv_bn_relu(channels, channels) for _ in in_channels[:-1])
        self.fuse = conv_bn_relu(len(in_channels) * channels, channels)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        top = features[-1]
        pooled = [_resize(pool(top), top.shape[-2:]) for pool in self.pools]
        levels = [lateral(f) for lateral, f in zip(self.laterals, features, strict=False)]
        levels.append(self.ppm_bottleneck(torch.cat([top, *pooled], dim=1)))
        for i in range(len(levels) - 1, 0, -1):  # top-down pathway
            levels[i - 1] = levels[i - 1] + _resize(levels[i], levels[i - 1].shape[-2:])
        outputs = [conv(level) for conv, level in zip(self.fpn_convs, levels, strict=False)] + [levels[-1]]
        size = outputs[0].shape[-2:]
        fused = self.fuse(torch.cat([outputs[0], *(_resize(o, size) for o in outputs[1:])], dim=1))
        return self.classifier(self.dropout(fused))
