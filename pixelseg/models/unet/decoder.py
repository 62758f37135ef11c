"""U-Net decoder: upsample, concatenate the encoder skip, two 3x3 conv-BN-ReLU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import conv_bn_relu


class DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(conv_bn_relu(in_channels + skip_channels, out_channels),
                                   conv_bn_relu(out_channels, out_channels))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


class UNetDecoder(nn.Module):
    """One block per encoder skip (deepest first), then skip-less 2x blocks until stride 1."""

    def __init__(self, encoder_channels: Sequence[int], encoder_reductions: Sequence[int],
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 16)) -> None:
        super().__init__()
        skips = list(encoder_channels[:-1])[::-1]
        self.extra_blocks = max(0, int(encoder_reductions[0]).bit_length() - 1)  # 2x steps from first skip to 1
        needed = len(skips) + self.extra_blocks
        if len(decoder_channels) < needed:
            raise ValueError(f"decoder_channels needs {needed} entries for this encoder, got {len(decoder_channels)}")
        channels = list(decoder_channels[:needed])
        in_channels = [encoder_channels[-1], *channels[:-1]]
        skip_channels = skips + [0] * self.extra_blocks
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o) for i, s, o in zip(in_channels, skip_channels, channels,
                                                                               strict=True))
        self.out_channels = channels[-1]

    def forward(self, features: list[torch.Tensor], input_size: tuple[int, int]) -> torch.Tensor:
        skips = features[:-1][::-1]
        x = features[-1]
        for index, block in enumerate(self.blocks):
            if index < len(skips):
                x = block(x, skips[index], skips[index].shape[-2:])
            else:
                remaining = len(self.blocks) - index - 1
                size = (input_size[0] >> remaining, input_size[1] >> remaining)
                x = block(x, None, size)
        return x


def double_conv(in_channels: int, out_channels: int, batch_norm: bool = False) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by ReLU (and batch norm before it when asked)."""
    layers: list[nn.Module] = []
    for channels_in in (in_channels, out_channels):
        layers.append(nn.Conv2d(channels_in, out_channels, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UpConvBlock(nn.Module):
    """2x2 up-convolution halving the channels, concatenation with the skip, two 3x3 convolutions."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = False) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.convs = double_conv(2 * out_channels, out_channels, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([skip, self.up(x)], dim=1))
