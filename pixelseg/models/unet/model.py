"""U-Net: Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
MICCAI 2015.

Faithful: the contracting path / expanding path with concatenated skips at every scale and two 3x3 convs per
decoder level. Differs: the encoder is any timm backbone (default ResNet-34), decoder convs have batch norm,
upsampling is nearest + conv rather than a 2x2 up-convolution, and padding keeps the output at input size
(the paper used unpadded convs and an overlap-tile strategy).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.registry import register_model
from pixelseg.models.unet.decoder import UNetDecoder


@register_model("unet")
class UNet(SegmentationModel):
    """U-Net with a timm encoder (Ronneberger et al., MICCAI 2015)."""

    def __init__(self, num_classes: int, encoder: str = "resnet34", in_channels: int = 3,
                 pretrained: bool | str | Path = False,
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 16)) -> None:
        super().__init__()
        self.encoder = TimmEncoder(encoder, in_channels=in_channels, pretrained=pretrained)
        self.decoder = UNetDecoder(self.encoder.channels, self.encoder.reductions, decoder_channels)
        self.head = nn.Conv2d(self.decoder.out_channels, num_classes, kernel_size=3, padding=1)
        self.size_divisor = max(self.encoder.reductions)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(images)
        return self.head(self.decoder(features, images.shape[-2:]))
