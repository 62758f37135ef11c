"""Semantic FPN: Kirillov, Girshick, He & Dollár, "Panoptic Feature Pyramid Networks", CVPR 2019, on the
feature pyramid of Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017.

Faithful: 256-channel pyramid P2..P5 from lateral 1x1 convs and a nearest-neighbour top-down pathway; the
semantic branch upsamples every level to 1/4 scale with 3x3 conv (128 channels) + GroupNorm + ReLU + 2x bilinear
stages, sums them, and a 1x1 conv and 4x bilinear upsampling give the logits. Differs: the encoder is any timm
backbone (its stride-4 to stride-32 stages act as C2..C5). ``pyramid_smoothing=False`` drops the 3x3 output
convolutions of P2..P5 (the network of segmentation_models_pytorch's FPN: at 512x512 on ResNet-34, 54.9 instead
of 80.6 GFLOPs, 23.16 instead of 25.52 M parameters).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import PYRAMID_STRIDES, TimmEncoder
from pixelseg.models.fpn.decoder import FeaturePyramid, SemanticBranch
from pixelseg.models.registry import register_model


@register_model("fpn")
class FPN(SegmentationModel):
    """Semantic FPN: feature pyramid + per-level heads merged at 1/4 (Kirillov et al., CVPR 2019).

        Args:
            num_classes: output classes.
            encoder: timm encoder name (``timm.list_models()``); default ResNet-50.
            in_channels: input channels (1 for grayscale).
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's
                download) or a weights file.
            pyramid_channels: channels of the pyramid's lateral and top-down path (256 in the paper).
            segmentation_channels: channels of each level's head before the merge (128 in the paper).
            dropout: dropout before the classifier.
            pyramid_smoothing: the 3x3 convolution after each top-down merge.

        Example:
            >>> model = pixelseg.models.create("fpn", num_classes=11, encoder="resnet34")
            >>> model(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 11, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, pyramid_channels: int = 256, segmentation_channels: int = 128,
                 dropout: float = 0.1, pyramid_smoothing: bool = True) -> None:
        super().__init__()
        self.encoder = TimmEncoder(encoder, in_channels=in_channels, pretrained=pretrained, strides=PYRAMID_STRIDES)
        self.pyramid = FeaturePyramid(self.encoder.channels, pyramid_channels, pyramid_smoothing)
        self.branch = SemanticBranch(len(PYRAMID_STRIDES), pyramid_channels, segmentation_channels)
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(segmentation_channels, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(images)
        pyramid = self.pyramid(features)
        logits = self.head(self.dropout(self.branch(pyramid)))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
