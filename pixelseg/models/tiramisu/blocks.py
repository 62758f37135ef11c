"""FC-DenseNet blocks: dense blocks, transition down and transition up."""

from __future__ import annotations

import torch
from torch import nn


class DenseLayer(nn.Sequential):
    """BN, ReLU, 3x3 conv producing ``growth`` feature maps, dropout 0.2."""

    def __init__(self, in_channels: int, growth: int, dropout: float = 0.2) -> None:
        super().__init__(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, growth, 3, padding=1), nn.Dropout2d(dropout))


class DenseBlock(nn.Module):
    """Each layer sees the concatenation of the block input and all earlier layers' outputs.

    Returns the block input concatenated with the new maps, or only the new maps (``new_only``), which is what
    the up path feeds to the next transition up to keep the channel count from exploding.
    """

    def __init__(self, in_channels: int, growth: int, layers: int, new_only: bool = False) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(in_channels + i * growth, growth) for i in range(layers))
        self.new_only = new_only
        self.out_channels = layers * growth if new_only else in_channels + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = []
        for layer in self.layers:
            out = layer(x)
            x = torch.cat([x, out], dim=1)
            new.append(out)
        return torch.cat(new, dim=1) if self.new_only else x


class TransitionDown(nn.Sequential):
    """BN, ReLU, 1x1 conv (same channels), dropout 0.2, 2x2 max-pool."""

    def __init__(self, channels: int, dropout: float = 0.2) -> None:
        super().__init__(nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1),
                         nn.Dropout2d(dropout), nn.MaxPool2d(2))


class TransitionUp(nn.ConvTranspose2d):
    """3x3 transposed convolution with stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels, 3, stride=2, padding=1, output_padding=1)
