"""LinkNet's decoder blocks and final classifier."""

from __future__ import annotations

import torch
from torch import nn


def _bn_relu(module: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(module, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class LinkNetDecoderBlock(nn.Sequential):
    """1x1 conv (m -> m/4), 3x3 full (transposed) conv upsampling by ``stride``, 1x1 conv (m/4 -> n); each with BN and
    ReLU (Chaurasia & Culurciello, Fig. 3)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        middle = in_channels // 4
        upsample = (nn.ConvTranspose2d(middle, middle, 3, stride=2, padding=1, output_padding=1, bias=False)
                    if stride == 2 else nn.Conv2d(middle, middle, 3, padding=1, bias=False))
        super().__init__(_bn_relu(nn.Conv2d(in_channels, middle, 1, bias=False), middle),
                         _bn_relu(upsample, middle),
                         _bn_relu(nn.Conv2d(middle, out_channels, 1, bias=False), out_channels))


class LinkNetDecoder(nn.Module):
    """Decoder block i takes block i+1's output and adds encoder block i's features (the "link"), deepest first."""

    def __init__(self, channels: list[int], reductions: list[int]) -> None:
        super().__init__()
        # one block per encoder stage from the deepest to the shallowest used (stride 4): its output has the channels
        # of the stage it links to; the stride-4 stage's block keeps its channels (its upsampling, if any, is 1)
        self.blocks = nn.ModuleList()
        for index in range(len(channels) - 1, 0, -1):
            target = index - 1 if index > 1 else index
            stride = reductions[index] // reductions[index - 1] if index > 1 else 1
            self.blocks.append(LinkNetDecoderBlock(channels[index], channels[target], stride))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        links = features[1:-1][::-1]  # the stages at strides 16, 8, 4 for a ResNet
        for block, link in zip(self.blocks, [*links, None], strict=True):
            x = block(x)
            if link is not None:
                x = x + link
        return x


class LinkNetClassifier(nn.Sequential):
    """The final block: 3x3 full conv (x2), 3x3 conv, 2x2 full conv (x2) to the classes."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 32) -> None:
        super().__init__(
            _bn_relu(nn.ConvTranspose2d(in_channels, channels, 3, stride=2, padding=1, output_padding=1, bias=False),
                     channels),
            _bn_relu(nn.Conv2d(channels, channels, 3, padding=1, bias=False), channels),
            nn.ConvTranspose2d(channels, num_classes, 2, stride=2))
