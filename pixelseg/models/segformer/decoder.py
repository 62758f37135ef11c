"""SegFormer's all-MLP decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import conv_bn_relu


class AllMLPDecoder(nn.Module):
    """Each level through a linear layer to ``dim`` channels, all upsampled to stride 4 and concatenated, fused by
    a 1x1 conv-BN-ReLU, dropout, and a linear classifier (all "MLPs" are 1x1 convolutions on the maps)."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.linear = nn.ModuleList(nn.Conv2d(channels, dim, 1) for channels in in_channels)
        self.fuse = conv_bn_relu(dim * len(in_channels), dim, kernel_size=1)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        levels = [F.interpolate(linear(f), size=size, mode="bilinear", align_corners=False) if i else linear(f)
                  for i, (linear, f) in enumerate(zip(self.linear, features, strict=True))]
        return self.classifier(self.dropout(self.fuse(torch.cat(levels[::-1], dim=1))))
