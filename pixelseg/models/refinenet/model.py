"""RefineNet: Lin, Milan, Shen & Reid, "RefineNet: Multi-Path Refinement Networks for High-Resolution Semantic
Segmentation", CVPR 2017.

Faithful: the 4-cascaded RefineNet on the four ResNet stages (strides 4 to 32): each RefineNet block adapts its
inputs with residual conv units (ReLU-conv-ReLU-conv + identity, no batch norm), fuses paths of several resolutions
by a 3x3 conv each, upsampling to the largest and summing, pools context with chained residual pooling (5x5 max
pooling at stride 1 + 3x3 conv, two blocks as in the CVPR paper, each added to the sum) and ends in one RCU;
RefineNet-4 has 512 channels and the others 256; the prediction is two RCUs and a 1x1 conv at stride 4, upsampled
bilinearly. Differs: the encoder is any timm backbone (ResNet-50 by default; the paper's best is ResNet-101/152),
and the adaptive convolution before each path's RCUs is a 3x3 conv as in the authors' released code.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import PYRAMID_STRIDES, TimmEncoder
from pixelseg.models.refinenet.decoder import RefineNetDecoder, ResidualConvUnit
from pixelseg.models.registry import register_model


@register_model("refinenet")
class RefineNet(SegmentationModel):
    """RefineNet: 4-cascaded multi-path refinement on ResNet features (Lin et al., CVPR 2017).

        Args:
            num_classes: output classes.
            encoder: timm encoder name with stride-4 to stride-32 features (ResNet-50 by default).
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's download) or a
                weights file.
            channels: width of RefineNet-1 to -3 (256 in the paper; RefineNet-4 has twice as many).
            pooling_blocks: pooling + conv blocks in each chained residual pooling (2 in the CVPR paper).

        Example:
            >>> model = pixelseg.models.create("refinenet", num_classes=21, encoder="resnet50")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, channels: int = 256, pooling_blocks: int = 2) -> None:
        super().__init__()
        self.encoder = TimmEncoder(encoder, in_channels, pretrained, strides=PYRAMID_STRIDES)
        self.decoder = RefineNetDecoder(self.encoder.channels, channels, 2 * channels, pooling_blocks)
        width = self.decoder.out_channels
        self.head = nn.Sequential(ResidualConvUnit(width), ResidualConvUnit(width), nn.Dropout(0.1),
                                  nn.Conv2d(width, num_classes, 1))

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.head(self.decoder(self.encoder(images)))
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
