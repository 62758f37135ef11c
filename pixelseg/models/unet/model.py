"""U-Net: Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation",
MICCAI 2015.

``unet_original`` is the paper's network: two 3x3 conv + ReLU per level, 2x2 max-pooling, 64 -> 1024 channels,
2x2 up-convolutions halving the channels, concatenated skips, a final 1x1 conv (31.0M parameters for one input
channel and two classes), weights drawn from a Gaussian with standard deviation sqrt(2/N), N the incoming nodes
of one unit (the paper's initialisation). Differs: the convolutions are padded, so the output has the input's size
(the paper used unpadded convolutions and an overlap-tile strategy); ``batch_norm=True`` adds BN after each conv.

``unet`` keeps the contracting/expanding structure with a skip at every scale on any timm encoder (default
ResNet-34); its decoder convs have batch norm and upsample with nearest neighbour + conv (as in
segmentation_models_pytorch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from pixelseg.models.base import SegmentationModel, he_initialisation
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.registry import register_model
from pixelseg.models.unet.decoder import UNetDecoder, UpConvBlock, double_conv


@register_model("unet")
class UNet(SegmentationModel):
    """U-Net with a timm encoder (Ronneberger et al., MICCAI 2015).

        Args:
            num_classes: output classes.
            encoder: timm encoder name; default ResNet-34 (the shipped CamVid model: tf_efficientnet_lite2).
            in_channels: input channels (1 for grayscale; timm adapts pretrained first-layer weights).
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's
                download) or a weights file.
            decoder_channels: channels of the five decoder stages, deepest first.

        Example:
            >>> model = pixelseg.models.create("unet", num_classes=11, encoder="tf_efficientnet_lite2")
            >>> model.meta["mean"]  # the normalisation its ImageNet weights expect
            [0.5, 0.5, 0.5]
    """

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


@register_model("unet_original")
class UNetOriginal(SegmentationModel):
    """The original U-Net, 64 -> 1024 channels, up-convolutions (Ronneberger et al., MICCAI 2015).

        Args:
            num_classes: output classes (2 in the paper).
            in_channels: input channels (1 in the paper).
            base_channels: channels of the first level, doubled at each level below (64 in the paper).
            depth: poolings (4 in the paper).
            batch_norm: batch norm after each convolution (not in the paper).

        Example:
            >>> model = pixelseg.models.create("unet_original", num_classes=2, in_channels=1)
            >>> sum(p.numel() for p in model.parameters())  # the paper's 31.0M
            31030658
    """

    def __init__(self, num_classes: int, in_channels: int = 3, base_channels: int = 64, depth: int = 4,
                 batch_norm: bool = False) -> None:
        super().__init__()
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.size_divisor = 2**depth
        self.down = nn.ModuleList(double_conv(c_in, c_out, batch_norm)
                                  for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True))
        self.up = nn.ModuleList(UpConvBlock(widths[level + 1], widths[level], batch_norm)
                                for level in reversed(range(depth)))
        self.head = nn.Conv2d(base_channels, num_classes, 1)
        he_initialisation(self)  # the paper's section 3: std sqrt(2/N)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        skips = []
        x = images
        for index, block in enumerate(self.down):
            if index:
                x = nn.functional.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = block(x, skip)
        return self.head(x)
