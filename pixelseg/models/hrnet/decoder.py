"""HRNetV2's segmentation head: every resolution's branch upsampled to the highest and concatenated."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import conv_bn_relu


class HRNetV2Head(nn.Module):
    """Concatenate the four branches at the stride-4 resolution (bilinear upsampling), a 1x1 conv-BN-ReLU mixing them
    (as many channels as the concatenation: 270 for W18, 720 for W48), then a 1x1 classifier."""

    def __init__(self, branch_channels: list[int], num_classes: int) -> None:
        super().__init__()
        channels = sum(branch_channels)
        self.mix = conv_bn_relu(channels, channels, kernel_size=1)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, branches: list[torch.Tensor]) -> torch.Tensor:
        size = branches[0].shape[-2:]
        x = torch.cat([branches[0], *(F.interpolate(b, size=size, mode="bilinear", align_corners=False)
                                      for b in branches[1:])], dim=1)
        return self.classifier(self.mix(x))
