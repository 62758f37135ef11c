"""DeepLab v1 and v2.

- v1: Chen, Papandreou, Kokkinos, Murphy & Yuille, "Semantic Image Segmentation with Deep Convolutional Nets and
  Fully Connected CRFs", ICLR 2015 (DeepLab-LargeFOV).
- v2: Chen, Papandreou, Kokkinos, Murphy & Yuille, "DeepLab: Semantic Image Segmentation with Deep Convolutional
  Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2018 (ASPP-L).

Faithful: VGG16 with 3x3 padded poolings, pool4 and pool5 at stride 1 and conv5 at dilation 2 (output stride 8);
LargeFOV's fc6 as a 3x3 convolution at dilation 12 with 1024 channels, fc7 1x1 1024, dropout 0.5 (20.5M parameters
with 21 classes, as in the paper's Table 2); with ImageNet weights, fc6/fc7 are the VGG16 classifier's weights
decimated as the paper says (every 4th filter, every 3rd tap of the 7x7 kernel); v2's ASPP-L: four fc6-fc7-fc8
branches at rates 6, 12, 18, 24 whose score maps are summed; v2's ResNet-101 variant: a dilated ResNet-101 at output
stride 8 and one 3x3 atrous conv per rate to the classes, summed; logits upsampled bilinearly. The papers' dense CRF
post-processing is ``--crf`` on ``pixelseg eval`` / ``predict`` (:class:`pixelseg.crf.DenseCRF`, mean-field on the
same Gaussian and bilateral kernels; its default weights are pixelseg's, not the papers' cross-validated ones).
Differs: training uses pixelseg's loss and schedule instead of the papers' SGD-poly with the 8x subsampled labels;
v2's multi-scale inputs with max fusion (MSC) are not part of the model (``--scales`` at inference instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from pixelseg.errors import CheckpointError
from pixelseg.models.base import SegmentationModel, he_initialisation
from pixelseg.models.deeplab.decoder import LargeFOVBranch, SumOfBranches, aspp_resnet, aspp_vgg
from pixelseg.models.encoders import TimmEncoder, VGG16Encoder, copy_into, vgg_fc_weights
from pixelseg.models.registry import register_model


def atrous_vgg(in_channels: int, pretrained: bool | str | Path) -> tuple[VGG16Encoder, dict]:
    """DeepLab's VGG16 at output stride 8, and the ImageNet state (empty without ``pretrained``)."""
    encoder = VGG16Encoder(in_channels).make_atrous("deeplab")
    he_initialisation(encoder)  # no batch norm: see FCN
    return encoder, (encoder.load_imagenet(pretrained) if pretrained else {})


def load_decimated_fc(branch: LargeFOVBranch, state: dict, source) -> None:
    """fc6 (4096 x 512 x 7 x 7) and fc7 (4096 x 4096) of ImageNet VGG16, decimated to 1024 filters and a 3x3 kernel
    (taps 0, 3, 6): DeepLab's initialisation of its thinner fc layers (ICLR 2015, Section 4.1)."""
    fc = vgg_fc_weights(state)
    if fc is None:
        return
    if branch[0].weight.shape != (1024, 512, 3, 3) or fc["fc6.weight"].numel() != 4096 * 512 * 7 * 7:
        raise CheckpointError(f"{source}: decimating VGG16's 4096-wide fc6/fc7 needs 1024-channel fc layers")
    fc6, fc7 = fc["fc6.weight"].reshape(4096, 512, 7, 7), fc["fc7.weight"].reshape(4096, 4096)
    copy_into(branch[0], fc6[::4, :, ::3, ::3], fc["fc6.bias"][::4], source)
    copy_into(branch[3], fc7[::4, ::4], fc["fc7.bias"][::4], source)


class _DeepLab(SegmentationModel):
    size_divisor = 8

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.head(self.encoder(images)[-1])
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)


@register_model("deeplabv1")
class DeepLabV1(_DeepLab):
    """DeepLab v1 LargeFOV: atrous VGG16 at output stride 8, fc6 at dilation 12 (Chen et al., ICLR 2015).

        Args:
            num_classes: output classes.
            in_channels: input channels.
            pretrained: False, True (timm's VGG16 ImageNet weights, fc6/fc7 decimated) or a VGG16 weights file.
            rate: fc6's dilation (12 for LargeFOV).
            fc_channels: width of fc6/fc7 (1024 in the paper; ImageNet fc weights need 1024).

        Example:
            >>> model = pixelseg.models.create("deeplabv1", num_classes=21)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    def __init__(self, num_classes: int, in_channels: int = 3, pretrained: bool | str | Path = False,
                 rate: int = 12, fc_channels: int = 1024) -> None:
        super().__init__()
        self.encoder, state = atrous_vgg(in_channels, pretrained)
        self.head = LargeFOVBranch(512, num_classes, rate, fc_channels)
        if state:
            load_decimated_fc(self.head, state, pretrained)


@register_model("deeplabv2")
class DeepLabV2(_DeepLab):
    """DeepLab v2: atrous VGG16 or ResNet-101 with ASPP-L, four atrous branches summed (Chen et al., TPAMI 2018).

        Args:
            num_classes: output classes.
            encoder: ``vgg16`` (ASPP-L of fc6-fc7-fc8 branches) or a timm ResNet (``resnet101``, the paper's best:
                one 3x3 atrous conv per rate), dilated to output stride 8.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights) or a weights file.
            rates: the ASPP rates (6, 12, 18, 24 for ASPP-L).
            fc_channels: width of the VGG branches' fc6/fc7 (1024).

        Example:
            >>> model = pixelseg.models.create("deeplabv2", num_classes=21, encoder="resnet101")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "vgg16", in_channels: int = 3,
                 pretrained: bool | str | Path = False, rates: Sequence[int] = (6, 12, 18, 24),
                 fc_channels: int = 1024) -> None:
        super().__init__()
        if encoder == "vgg16":
            self.encoder, state = atrous_vgg(in_channels, pretrained)
            self.head: SumOfBranches = aspp_vgg(512, num_classes, rates, fc_channels)
            for branch in self.head if state else ():
                load_decimated_fc(branch, state, pretrained)
        else:
            self.encoder = TimmEncoder.atrous(encoder, in_channels, pretrained, output_stride=8)
            self.head = aspp_resnet(self.encoder.channels[-1], num_classes, rates)
