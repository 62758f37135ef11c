"""RefineNet's building blocks (Lin et al., CVPR 2017, Fig. 3): residual conv units, multi-resolution fusion,
chained residual pooling, and the RefineNet block that chains them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv3x3(in_channels: int, out_channels: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


class ResidualConvUnit(nn.Module):
    """``x + conv3x3(relu(conv3x3(relu(x))))``: the ResNet unit without batch norm (Fig. 3(b))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv3x3(channels, channels, bias=True), _conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class ChainedResidualPooling(nn.Module):
    """ReLU, then a chain of (5x5 max pooling at stride 1, 3x3 conv) blocks, each block's output added to the
    running sum, so that context from ever larger regions is pooled and re-weighted (Fig. 3(d))."""

    def __init__(self, channels: int, blocks: int = 2) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_conv3x3(channels, channels) for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = path = F.relu(x)
        for conv in self.convs:
            path = conv(F.max_pool2d(path, 5, stride=1, padding=2))
            x = x + path
        return x


class RefineNetBlock(nn.Module):
    """One RefineNet: per input path an adaptive 3x3 conv (to ``channels``) and two RCUs; multi-resolution fusion
    (a 3x3 conv per path, upsampled to the largest input, summed; skipped for a single path); chained residual
    pooling; one output RCU."""

    def __init__(self, in_channels: list[int], channels: int, pooling_blocks: int = 2) -> None:
        super().__init__()
        self.adapt = nn.ModuleList(
            nn.Sequential(_conv3x3(c, channels), ResidualConvUnit(channels), ResidualConvUnit(channels))
            for c in in_channels)
        self.fuse = nn.ModuleList(_conv3x3(channels, channels) for _ in in_channels) if len(in_channels) > 1 else None
        self.pool = ChainedResidualPooling(channels, pooling_blocks)
        self.output = ResidualConvUnit(channels)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        paths = [adapt(x) for adapt, x in zip(self.adapt, inputs, strict=True)]
        if self.fuse is None:
            x = paths[0]
        else:
            size = max((p.shape[-2:] for p in paths), key=lambda s: s[0] * s[1])
            x = sum(F.interpolate(conv(p), size=size, mode="bilinear", align_corners=False) if p.shape[-2:] != size
                    else conv(p) for conv, p in zip(self.fuse, paths, strict=True))
        return self.output(self.pool(x))


class RefineNetDecoder(nn.Module):
    """4-cascaded RefineNet (Fig. 2(c)): RefineNet-4 on the stride-32 features alone, then RefineNet-3, -2, -1 each
    fusing the previous output with the next shallower features; 512 channels for RefineNet-4 and ``channels`` for
    the others (256 in the paper)."""

    def __init__(self, encoder_channels: list[int], channels: int = 256, deepest_channels: int = 512,
                 pooling_blocks: int = 2) -> None:
        super().__init__()
        deepest, *others = encoder_channels[::-1]
        widths = [deepest_channels] + [channels] * len(others)
        self.blocks = nn.ModuleList([RefineNetBlock([deepest], widths[0], pooling_blocks)])
        for index, c in enumerate(others):
            self.blocks.append(RefineNetBlock([c, widths[index]], widths[index + 1], pooling_blocks))
        self.out_channels = widths[-1]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        deepest, *others = features[::-1]
        x = self.blocks[0](deepest)
        for block, feature in zip(self.blocks[1:], others, strict=True):
            x = block(feature, x)
        return x
