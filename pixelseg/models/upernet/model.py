"""UPerNet: Xiao, Liu, Zhou, Jiang & Sun, "Unified Perceptual Parsing for Scene Understanding", ECCV 2018, on a
ConvNeXt encoder as in Liu, Mao, Wu, Feichtenhofer, Darrell & Xie, "A ConvNet for the 2020s", CVPR 2022 (the
same head the Swin Transformer paper uses; any timm encoder can replace ConvNeXt, Swin included).

Faithful: pyramid pooling (bins 1, 2, 3, 6) on the last stage, an FPN with lateral 1x1 and output 3x3
conv-BN-ReLUs over the other stages, all levels upsampled to stride 4, concatenated and fused by a 3x3
conv-BN-ReLU (512 channels), dropout 0.1 and a 1x1 classifier; an auxiliary FCN head on the third stage (256
channels, weight 0.4) as in the ConvNeXt/Swin segmentation recipes. ConvNeXt-T: 60.2M parameters for ADE20K's
150 classes with the auxiliary head (the paper: 60M).
Differs: the stochastic-depth rate and layer-wise learning-rate decay of the recipe are not applied.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import PYRAMID_STRIDES, TimmEncoder
from pixelseg.models.pspnet.decoder import AuxiliaryHead
from pixelseg.models.registry import register_model
from pixelseg.models.upernet.decoder import UPerHead


@register_model("upernet")
class UPerNet(SegmentationModel):
    """UPerNet: pyramid pooling + FPN head on a ConvNeXt (or any timm) encoder (Xiao et al., ECCV 2018).

        Args:
            num_classes: output classes.
            encoder: timm encoder name; default ConvNeXt-T (the ConvNeXt paper's ADE20K setting).
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's
                download) or a weights file.
            channels: channels of the head's pyramid pooling and FPN (512 in the paper).
            aux_weight: weight of the auxiliary FCN head's loss in training (0.4).

        Example:
            >>> model = pixelseg.models.create("upernet", num_classes=150)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 150, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "convnext_tiny", in_channels: int = 3,
                 pretrained: bool | str | Path = False, channels: int = 512, aux_weight: float = 0.4) -> None:
        super().__init__()
        # C2..C5: the head fuses at stride 4, never at a stride-2 level
        self.encoder = TimmEncoder(encoder, in_channels, pretrained, strides=PYRAMID_STRIDES)
        self.head = UPerHead(self.encoder.channels, num_classes, channels)
        self.aux_weight = aux_weight
        self.aux_head = AuxiliaryHead(self.encoder.channels[-2], num_classes) if aux_weight > 0 else None

    def forward_padded(self, images: torch.Tensor):
        features = self.encoder(images)
        logits = self.head(features)
        if self.training and self.aux_head is not None:
            return logits, self.aux_head(features[-2])
        return logits
