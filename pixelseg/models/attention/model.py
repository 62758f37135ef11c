"""Attention heads on a dilated ResNet.

- Non-local: Wang, Girshick, Gupta & He, "Non-local Neural Networks", CVPR 2018 (the segmentation head of later
  work, e.g. CCNet's comparison, Table 4).
- DANet: Fu, Liu, Tian, Li, Bao, Fang & Lu, "Dual Attention Network for Scene Segmentation", CVPR 2019.
- CCNet: Huang, Wang, Huang, Huang, Wei & Liu, "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV 2019.

Faithful: a dilated ResNet at output stride 8; the embedded-Gaussian non-local block with a zero-initialised output
BN; DANet's position (Q/K at C/8, learnt ``gamma`` from 0) and channel attention (the energy subtracted from its
row maximum, as in the authors' code) on two C/4 branches whose outputs are summed; CCNet's criss-cross attention
(one softmax over row and column) applied R = 2 times with shared weights inside the reduce / attend / concatenate /
bottleneck head, 512 channels. Differs: the encoder is any timm backbone that supports ``output_stride`` (ResNet-50
by default; the papers use ResNet-101 with a deep stem); DANet's per-branch auxiliary outputs and CCNet's auxiliary
head are not used; criss-cross attention is computed with einsum, not the authors' CUDA kernel.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelseg.models.attention.decoder import AttentionHead, DANetHead, NonLocalBlock, RecurrentCrissCross, upsample_to
from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.registry import register_model


class _AttentionModel(SegmentationModel):
    def __init__(self, encoder: str, in_channels: int, pretrained, output_stride: int) -> None:
        super().__init__()
        self.encoder = TimmEncoder.atrous(encoder, in_channels, pretrained, output_stride)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        return upsample_to(self.head(self.encoder(images)[-1]), images)


@register_model("nonlocal")
class NonLocalNet(_AttentionModel):
    """Non-local network: a non-local block in the head of a dilated ResNet (Wang et al., CVPR 2018).

        Args:
            num_classes: output classes.
            encoder: timm encoder name, dilated to ``output_stride``; default ResNet-50.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's download) or a
                weights file.
            output_stride: 8 (the papers) or 16.
            channels: width of the head (512).

        Example:
            >>> model = pixelseg.models.create("nonlocal", num_classes=19, encoder="resnet50")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 19, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, output_stride: int = 8, channels: int = 512) -> None:
        super().__init__(encoder, in_channels, pretrained, output_stride)
        self.head = AttentionHead(self.encoder.channels[-1], num_classes, NonLocalBlock(channels), channels)


@register_model("danet")
class DANet(_AttentionModel):
    """DANet: position and channel attention on a dilated ResNet (Fu et al., CVPR 2019).

        Args:
            num_classes: output classes.
            encoder: timm encoder name, dilated to ``output_stride``; default ResNet-50.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's download) or a
                weights file.
            output_stride: 8 (the papers) or 16.

        Example:
            >>> model = pixelseg.models.create("danet", num_classes=19, encoder="resnet50")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 19, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, output_stride: int = 8) -> None:
        super().__init__(encoder, in_channels, pretrained, output_stride)
        self.head = DANetHead(self.encoder.channels[-1], num_classes)


@register_model("ccnet")
class CCNet(_AttentionModel):
    """CCNet: recurrent criss-cross attention (R = 2) on a dilated ResNet (Huang et al., ICCV 2019).

        Args:
            num_classes: output classes.
            encoder: timm encoder name, dilated to ``output_stride``; default ResNet-50.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's download) or a
                weights file.
            output_stride: 8 (the papers) or 16.
            channels: width of the head (512).
            recurrence: R, the times the criss-cross attention is applied with shared weights (2 in the paper).

        Example:
            >>> model = pixelseg.models.create("ccnet", num_classes=19, encoder="resnet50", recurrence=2)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 19, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, output_stride: int = 8, channels: int = 512,
                 recurrence: int = 2) -> None:
        super().__init__(encoder, in_channels, pretrained, output_stride)
        self.head = AttentionHead(self.encoder.channels[-1], num_classes, RecurrentCrissCross(channels, recurrence),
                                  channels)
