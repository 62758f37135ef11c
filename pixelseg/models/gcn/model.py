"""GCN: Peng, Zhang, Yu, Luo & Sun, "Large Kernel Matters -- Improve Semantic Segmentation by Global Convolutional
Network", CVPR 2017.

Faithful: a ResNet encoder whose res2..res5 features each go through a Global Convolutional Network block (k x 1 +
1 x k and 1 x k + k x 1 paths, no non-linearity, k = 15 as in the paper's best setting) straight to class score maps,
then Boundary Refinement (a residual block); score maps are fused from the deepest up by learnt 2x deconvolutions
(bilinear initialisation) and further BR blocks, and two final deconvolution + BR steps return to the input's
resolution. Differs: the encoder is any timm backbone (ResNet-50 by default; the paper uses ResNet-152 and also its
own ResNet-GCN backbone), and ImageNet-pretrained weights come from timm or an installed package.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelseg.errors import ConfigError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import PYRAMID_STRIDES, TimmEncoder
from pixelseg.models.gcn.decoder import GCNDecoder
from pixelseg.models.registry import register_model


@register_model("gcn")
class GCN(SegmentationModel):
    """GCN, "Large Kernel Matters": global convolutions + boundary refinement on ResNet features (Peng et al., 2017).

        Args:
            num_classes: output classes.
            encoder: timm encoder name with stride-4 to stride-32 features (ResNet-50 by default).
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's download) or a
                weights file.
            kernel_size: k of the k x 1 + 1 x k global convolutions (15 in the paper; odd).

        Example:
            >>> model = pixelseg.models.create("gcn", num_classes=21, encoder="resnet50", kernel_size=15)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, kernel_size: int = 15) -> None:
        super().__init__()
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ConfigError(f"kernel_size must be a positive odd number, got {kernel_size}")
        self.encoder = TimmEncoder(encoder, in_channels, pretrained, strides=PYRAMID_STRIDES)
        self.decoder = GCNDecoder(self.encoder.channels, num_classes, kernel_size)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))
