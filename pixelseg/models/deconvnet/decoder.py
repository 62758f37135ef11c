"""DeconvNet's centre (fc6, fc7, the fc6 deconvolution) and its mirrored unpooling decoder's layout."""

from __future__ import annotations

from torch import nn

DECONVNET_DECODER = ((512, 512, 512, 512), (512, 512, 512, 256), (256, 256, 256, 128), (128, 128, 64), (64, 64, 64))
"""Per unpooling stage, deepest first, the channels of its deconvolution layers (Noh et al., Table 1)."""


def _bn_relu(layer: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(layer, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class DeconvNetCentre(nn.Sequential):
    """fc6 (7x7 conv, 4096), fc7 (1x1, 4096) and deconv-fc6 (7x7 transposed conv back to 512), each with BN + ReLU.
    Padded to keep the pool5 map's size, where the paper's fc6 reduces a 7x7 pool5 of 224x224 crops to 1x1."""

    def __init__(self, channels: int = 4096) -> None:
        super().__init__(_bn_relu(nn.Conv2d(512, channels, 7, padding=3), channels),
                         _bn_relu(nn.Conv2d(channels, channels, 1), channels),
                         _bn_relu(nn.ConvTranspose2d(channels, 512, 7, padding=3), 512))
