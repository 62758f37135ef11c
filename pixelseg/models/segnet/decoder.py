"""SegNet decoders: max-unpooling with the encoder's stored indices, then convolutions (no learned upsampling)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                               nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class UnpoolingDecoder(nn.Module):
    """One stage per encoder stage, deepest first: ``max_unpool2d`` with that stage's indices, then conv layers.

    ``stages`` lists, per decoder stage, the channel sequence of its convolutions, e.g. ``(512, 512, 512, 256)``
    is three convolutions 512->512->512->256.
    """

    def __init__(self, stages: Sequence[Sequence[int]], kernel_size: int = 3, relu: bool = True) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        for channels in stages:
            layers: list[nn.Module] = []
            for in_channels, out_channels in zip(channels[:-1], channels[1:], strict=True):
                layers += conv_bn(in_channels, out_channels, kernel_size, relu)
            self.stages.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor, pooling: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Size]]
                ) -> torch.Tensor:
        for stage, (_, indices, size) in zip(self.stages, reversed(pooling), strict=True):
            x = F.max_unpool2d(x, indices, 2, 2, output_size=size[-2:])
            x = stage(x)
        return x
