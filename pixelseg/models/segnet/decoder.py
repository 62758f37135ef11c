"""SegNet decoders: max-unpooling with the encoder's stored indices, then convolutions (no learned upsampling)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import conv_bn_relu


class UnpoolingDecoder(nn.Module):
    """One stage per encoder stage, deepest first: ``max_unpool2d`` with that stage's indices, then conv layers.

    ``stages`` lists, per decoder stage, the channel sequence of its convolutions, e.g. ``(512, 512, 512, 256)``
    is three convolutions 512->512->512->256.
    """

    def __init__(self, stages: Sequence[Sequence[int]], kernel_size: int = 3, relu: bool = True) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        for channels in stages:
            self.stages.append(nn.Sequential(*(
                conv_bn_relu(in_channels, out_channels, kernel_size, relu=relu)
                for in_channels, out_channels in zip(channels[:-1], channels[1:], strict=True))))

    def forward(self, x: torch.Tensor, pooling: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Size]]
                ) -> torch.Tensor:
        for stage, (_, indices, size) in zip(self.stages, reversed(pooling), strict=True):
            x = F.max_unpool2d(x, indices, 2, 2, output_size=size[-2:])
            x = stage(x)
        return x
