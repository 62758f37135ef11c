"""DeepLabv3+: Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
Segmentation", ECCV 2018.

Faithful: atrous encoder at output stride 16 or 8, ASPP with rates (6, 12, 18) at stride 16 (doubled at 8)
plus image-level pooling, and the decoder that fuses 4x-upsampled ASPP features with 48-channel stride-4
features through two 3x3 convs, then upsamples 4x. Differs: the encoder is any timm backbone that supports
``output_stride`` (default ResNet-50 rather than Xception-65), and the convolutions are not depthwise-separable.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.errors import ConfigError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.deeplabv3plus.decoder import DeepLabV3PlusDecoder
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.registry import register_model


@register_model("deeplabv3plus")
class DeepLabV3Plus(SegmentationModel):
    """DeepLabv3+ with a timm atrous encoder (Chen et al., ECCV 2018)."""

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, output_stride: int = 16, decoder_channels: int = 256) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ConfigError(f"deeplabv3plus output_stride must be 8 or 16, got {output_stride}")
        self.encoder = TimmEncoder(encoder, in_channels=in_channels, pretrained=pretrained,
                                   output_stride=output_stride)
        reductions = self.encoder.reductions
        if 4 not in reductions:
            raise ConfigError(f"encoder {encoder!r} has no stride-4 features for the DeepLabv3+ decoder")
        self.low_level_index = reductions.index(4)
        rates = tuple(rate * 16 // output_stride for rate in (6, 12, 18))
        self.decoder = DeepLabV3PlusDecoder(self.encoder.channels[-1], self.encoder.channels[self.low_level_index],
                                            rates, decoder_channels)
        self.head = nn.Conv2d(decoder_channels, num_classes, 1)
        self.size_divisor = 32

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(images)
        x = self.decoder(features[-1], features[self.low_level_index])
        return F.interpolate(self.head(x), size=images.shape[-2:], mode="bilinear", align_corners=False)
