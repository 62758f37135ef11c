"""SETR's three decoders (Zheng et al., CVPR 2021, Section 3.3, Fig. 1): naive, progressive upsampling (PUP) and
multi-level feature aggregation (MLA)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import conv_bn_relu


def _up(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class NaiveDecoder(nn.Module):
    """A 2-layer network, 1x1 conv + BN + ReLU then a 1x1 conv to the classes, on the last layer's tokens."""

    def __init__(self, embed_dim: int, num_classes: int, channels: int = 256) -> None:
        super().__init__()
        self.layers = nn.Sequential(conv_bn_relu(embed_dim, channels, kernel_size=1),
                                    nn.Conv2d(channels, num_classes, 1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.layers(features[-1])


class PUPDecoder(nn.Module):
    """Progressive upsampling: four (3x3 conv-BN-ReLU, 2x bilinear upsampling) steps from 1/16 to full size, then a
    1x1 conv to the classes."""

    def __init__(self, embed_dim: int, num_classes: int, channels: int = 256, steps: int = 4) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv_bn_relu(embed_dim if i == 0 else channels, channels) for i in range(steps))
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for conv in self.convs:
            x = _up(conv(x), 2)
        return self.classifier(x)


class MLADecoder(nn.Module):
    """Multi-level aggregation: tokens of four evenly spaced layers, each reduced by a 1x1 conv; a top-down
    aggregation adds each stream to the sum of the deeper ones; per stream a 3x3 conv to ``channels`` and a 3x3 conv
    to half of it, 4x upsampling; the streams concatenated and classified by a 1x1 conv."""

    def __init__(self, embed_dim: int, num_classes: int, channels: int = 256, streams: int = 4) -> None:
        super().__init__()
        self.reduce = nn.ModuleList(conv_bn_relu(embed_dim, channels, kernel_size=1) for _ in range(streams))
        self.aggregate = nn.ModuleList(nn.Sequential(conv_bn_relu(channels, channels),
                                                     conv_bn_relu(channels, channels // 2)) for _ in range(streams))
        self.classifier = nn.Conv2d(streams * (channels // 2), num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        reduced = [reduce(f) for reduce, f in zip(self.reduce, features, strict=True)]
        running, outputs = None, []
        for index in range(len(reduced) - 1, -1, -1):  # the deepest stream first
            running = reduced[index] if running is None else running + reduced[index]
            outputs.append(_up(self.aggregate[index](running), 4))
        return self.classifier(torch.cat(outputs[::-1], dim=1))


DECODERS = {"naive": NaiveDecoder, "pup": PUPDecoder, "mla": MLADecoder}
