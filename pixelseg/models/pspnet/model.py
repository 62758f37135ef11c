"""PSPNet: Zhao, Shi, Qi, Wang & Jia, "Pyramid Scene Parsing Network", CVPR 2017.

Faithful: dilated ResNet encoder at output stride 8, pyramid pooling at bins 1, 2, 3, 6 (each reduced to 1/4 of
the channels), a 3x3 conv + dropout + 1x1 classifier, and the auxiliary loss head on the stage-4 features with
weight 0.4. Differs: the encoder is any timm backbone that supports ``output_stride`` (default ResNet-50 with a
single 7x7 stem rather than the paper's deep three-conv stem). ``pooling="max"`` is the max-pooling pyramid of
the paper's Table 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.pspnet.decoder import AuxiliaryHead, PSPHead
from pixelseg.models.registry import register_model


@register_model("pspnet")
class PSPNet(SegmentationModel):
    """PSPNet: dilated ResNet + pyramid pooling + auxiliary head (Zhao et al., CVPR 2017).

        Args:
            num_classes: output classes.
            encoder: timm encoder name, dilated to ``output_stride``; default ResNet-50.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's
                download) or a weights file.
            output_stride: 8 (the paper) or 16.
            bins: the pyramid's pooled grid sizes (1, 2, 3, 6 in the paper).
            aux_weight: weight of the auxiliary head's loss on stage-3 features in training (0.4 in the paper).
            pooling: the pyramid's pooling, "avg" (the paper's choice) or "max" (its Table 1 ablation).

        Example:
            >>> model = pixelseg.models.create("pspnet", num_classes=21, encoder="resnet50", output_stride=8)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, output_stride: int = 8, bins: Sequence[int] = (1, 2, 3, 6),
                 aux_weight: float = 0.4, pooling: str = "avg") -> None:
        super().__init__()
        self.encoder = TimmEncoder.atrous(encoder, in_channels, pretrained, output_stride)
        channels = self.encoder.channels
        self.head = PSPHead(channels[-1], num_classes, bins, pooling=pooling)
        self.aux_weight = aux_weight
        self.aux_head = AuxiliaryHead(channels[-2], num_classes) if aux_weight > 0 else None

    def forward_padded(self, images: torch.Tensor):
        features = self.encoder(images)
        logits = self.head(features[-1])
        if self.training and self.aux_head is not None:
            return logits, self.aux_head(features[-2])
        return logits
