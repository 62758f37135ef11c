"""DeepLabv3 and DeepLabv3+.

- DeepLabv3: Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation", arXiv 2017.
- DeepLabv3+: Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
  Segmentation", ECCV 2018.

Faithful: atrous encoder at output stride 16 or 8; ASPP with a 1x1 branch, 3x3 atrous branches at rates
(6, 12, 18) at stride 16 (doubled at stride 8) and image-level pooling; v3+ fuses the 4x-upsampled ASPP
features with 48-channel stride-4 features through two 3x3 convs, then upsamples 4x; v3+'s ASPP and decoder
convolutions are atrous depthwise-separable (depthwise 3x3, pointwise 1x1, BN, ReLU). Differs: the encoder is any
timm backbone that supports ``output_stride`` (default ResNet-50 rather than Xception-65 / ResNet-101). DeepLabv3's
multi-grid unit rates (``multi_grid=(1, 2, 4)``) and its cascaded variant (``cascade_blocks=3, aspp=False``: block5-7
after the encoder, Section 3.2) are options of ``deeplabv3`` on ResNet encoders; the cascaded blocks start from random
weights (the paper copies block4's ImageNet weights). ``aspp_conv=True, fuse_convs=1`` builds
segmentation_models_pytorch's variant (one of the two decoder convs at 1/16 scale after the ASPP instead of at 1/4).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.errors import ConfigError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.deeplabv3.decoder import CascadedBlocks, DeepLabV3Decoder, DeepLabV3PlusDecoder, set_multi_grid
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.registry import register_model


def _atrous_encoder(encoder: str, in_channels: int, pretrained, output_stride: int) -> tuple[TimmEncoder, tuple]:
    """The dilated encoder and the ASPP rates for its output stride (6, 12, 18 at 16; doubled at 8)."""
    rates = tuple(rate * 16 // output_stride for rate in (6, 12, 18))
    return TimmEncoder.atrous(encoder, in_channels, pretrained, output_stride), rates


@register_model("deeplabv3")
class DeepLabV3(SegmentationModel):
    """DeepLabv3: atrous encoder + ASPP (Chen et al., 2017).

        Args:
            num_classes: output classes.
            encoder: timm encoder name, dilated to ``output_stride``; default ResNet-50.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's
                download) or a weights file.
            output_stride: 8 or 16 (the ASPP rates are 12/24/36 at 8, 6/12/18 at 16, as in the paper).
            decoder_channels: channels of the ASPP branches (256 in the paper).
            multi_grid: unit rates of the last stage's three units, e.g. (1, 2, 4) (the paper's best); None: off.
            cascade_blocks: extra copies of the last stage after it (block5, block6, ... at doubling rates; 0: none).
            aspp: the ASPP head (False: a 1x1 classifier on the last block, the paper's cascaded-only model).

        Example:
            >>> model = pixelseg.models.create("deeplabv3", num_classes=21, output_stride=16)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
            >>> cascaded = pixelseg.models.create("deeplabv3", num_classes=21, output_stride=16,
            ...                                   multi_grid=(1, 2, 4), cascade_blocks=3, aspp=False)
            >>> cascaded.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, output_stride: int = 8, decoder_channels: int = 256,
                 multi_grid: Sequence[int] | None = None, cascade_blocks: int = 0, aspp: bool = True) -> None:
        super().__init__()
        self.encoder, rates = _atrous_encoder(encoder, in_channels, pretrained, output_stride)
        if multi_grid:
            set_multi_grid(self.encoder, multi_grid, output_stride)
        grid = tuple(multi_grid) if multi_grid else (1, 1, 1)
        self.cascade = CascadedBlocks(self.encoder, cascade_blocks, output_stride, grid) if cascade_blocks else None
        channels = self.encoder.channels[-1]
        self.decoder = DeepLabV3Decoder(channels, rates, decoder_channels) if aspp else nn.Identity()
        self.head = nn.Conv2d(decoder_channels if aspp else channels, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.encoder(images)[-1]
        if self.cascade is not None:
            x = self.cascade(x)
        x = self.head(self.decoder(x))
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)


@register_model("deeplabv3plus")
class DeepLabV3Plus(SegmentationModel):
    """DeepLabv3+: atrous encoder, ASPP and a low-level skip decoder (Chen et al., ECCV 2018).

        Args:
            num_classes: output classes.
            encoder: timm encoder name, dilated to ``output_stride``; default ResNet-50.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's
                download) or a weights file.
            output_stride: 16 (the paper's default) or 8.
            decoder_channels: channels of the ASPP and the decoder (256 in the paper).
            aspp_conv: depthwise-separable ASPP convolutions (the paper's Xception setting) instead of plain ones.
            fuse_convs: 3x3 convolutions after the low-level skip (2 in the paper).

        Example:
            >>> model = pixelseg.models.create("deeplabv3plus", num_classes=11, encoder="resnet50")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 11, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, output_stride: int = 16, decoder_channels: int = 256,
                 aspp_conv: bool = False, fuse_convs: int = 2) -> None:
        super().__init__()
        self.encoder, rates = _atrous_encoder(encoder, in_channels, pretrained, output_stride)
        reductions = self.encoder.reductions
        if 4 not in reductions:
            raise ConfigError(f"encoder {encoder!r} has no stride-4 features for the DeepLabv3+ decoder")
        self.low_level_index = reductions.index(4)
        self.decoder = DeepLabV3PlusDecoder(self.encoder.channels[-1], self.encoder.channels[self.low_level_index],
                                            rates, decoder_channels, aspp_conv=aspp_conv, fuse_convs=fuse_convs)
        self.head = nn.Conv2d(decoder_channels, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(images)
        x = self.decoder(features[-1], features[self.low_level_index])
        return F.interpolate(self.head(x), size=images.shape[-2:], mode="bilinear", align_corners=False)
