"""ENet's building blocks: the initial block and the regular, downsampling and upsampling bottlenecks.

Widths and biases follow the authors' Torch code (e-lab/ENet-training): a bottleneck's internal width is its
*output* width / 4 (so the downsampling 16 -> 64 bottleneck works at 16 channels), the 3x3 (regular, dilated,
transposed) convolutions and the second conv of an asymmetric pair carry a bias, the 1x1 convolutions do not."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _bn_act(channels: int, relu: bool) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True) if relu else nn.PReLU(channels)]


class InitialBlock(nn.Module):
    """A 3x3 stride-2 conv (13 filters) concatenated with a 2x2 max-pool of the input: 16 channels at 1/2."""

    def __init__(self, in_channels: int = 3, out_channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.post = nn.Sequential(*_bn_act(out_channels, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(torch.cat([self.conv(x), self.pool(x)], dim=1))


class Bottleneck(nn.Module):
    """Residual bottleneck: 1x1 projection, a main conv (regular, dilated or asymmetric 5x1 + 1x5), 1x1 expansion,
    spatial dropout; added to the identity."""

    def __init__(self, channels: int, dilation: int = 1, asymmetric: bool = False, dropout: float = 0.1,
                 relu: bool = False, ratio: int = 4) -> None:
        super().__init__()
        internal = channels // ratio
        if asymmetric:
            middle: list[nn.Module] = [nn.Conv2d(internal, internal, (5, 1), padding=(2, 0), bias=False),
                                       nn.Conv2d(internal, internal, (1, 5), padding=(0, 2))]
        else:
            middle = [nn.Conv2d(internal, internal, 3, padding=dilation, dilation=dilation)]
        self.branch = nn.Sequential(
            nn.Conv2d(channels, internal, 1, bias=False), *_bn_act(internal, relu),
            *middle, *_bn_act(internal, relu),
            nn.Conv2d(internal, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.Dropout2d(dropout))
        self.activation = nn.ReLU(inplace=True) if relu else nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x + self.branch(x))


class DownsamplingBottleneck(nn.Module):
    """Main path: 2x2 max-pool (indices kept for the decoder) and zero-padded channels; branch: 2x2 stride-2 conv."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1, ratio: int = 4) -> None:
        super().__init__()
        internal = out_channels // ratio
        self.extra_channels = out_channels - in_channels
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, internal, 2, stride=2, bias=False), *_bn_act(internal, relu=False),
            nn.Conv2d(internal, internal, 3, padding=1), *_bn_act(internal, relu=False),
            nn.Conv2d(internal, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.Dropout2d(dropout))
        self.activation = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Size]:
        size = x.shape
        main, indices = F.max_pool2d(x, 2, 2, return_indices=True)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra_channels))
        return self.activation(main + self.branch(x)), indices, size


class UpsamplingBottleneck(nn.Module):
    """Main path: 1x1 conv and max-unpooling with the encoder's indices; branch: 3x3 stride-2 transposed conv."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, ratio: int = 4) -> None:
        super().__init__()
        internal = out_channels // ratio
        self.main = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, internal, 1, bias=False), *_bn_act(internal, relu=True))
        self.up = nn.ConvTranspose2d(internal, internal, 3, stride=2, padding=1)
        self.expand = nn.Sequential(*_bn_act(internal, relu=True), nn.Conv2d(internal, out_channels, 1, bias=False),
                                    nn.BatchNorm2d(out_channels), nn.Dropout2d(dropout))
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
        main = F.max_unpool2d(self.main(x), indices, 2, 2, output_size=size[-2:])
        branch = self.up(self.reduce(x), output_size=size[-2:])
        return self.activation(main + self.expand(branch))
