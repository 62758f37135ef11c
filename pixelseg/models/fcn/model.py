"""FCN: Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015.

Faithful: VGG16 encoder with fc6/fc7 turned into 7x7 and 1x1 convolutions (4096 channels), 1x1 score
layers, learned 2x upsampling (transposed convolutions initialised to bilinear), the pool4 (16s) and
pool3 (8s) skip fusions with zero-initialised skip scores, and the final 32x/16x/8x upsampling fixed to bilinear
interpolation (not learned, as in the paper and its reference nets). Parameters with VGG16 and 21 classes: 32s
134.35M, 16s 134.36M, 8s 134.38M (the paper: 134M). Differs: instead of the paper's 100-pixel input
padding and crop offsets, the input is padded to a multiple of 32 and the output cropped, so every fused map
lines up exactly; any timm encoder can replace VGG16 (its last three stages act as pool3/pool4/pool5). The paper
fine-tunes an ImageNet VGG16 (``pretrained=True`` or a weights file); from scratch, VGG16 and fc6/fc7 start from
He et al.'s Gaussian (std sqrt(2/N)): under PyTorch's default initialisation the part of pool5 that depends on the
input was ~1e5 times weaker (2.5e-6 against 0.30 RMS), a network whose output ignores its image. score_fr keeps a
small random initialisation instead of the paper's zeros, so the first step's gradient reaches every layer.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelseg.models.base import SegmentationModel, he_initialisation
from pixelseg.models.encoders import TimmEncoder, VGG16Encoder, copy_into, vgg_fc_weights
from pixelseg.models.fcn.decoder import FCNHead
from pixelseg.models.registry import register_model


class FCN(SegmentationModel):
    """FCN-32s / 16s / 8s (Long et al., CVPR 2015).

        Args:
            num_classes: output classes.
            skips: 0 (FCN-32s), 1 (FCN-16s, the pool4 skip) or 2 (FCN-8s, pool4 and pool3); ``fcn32s``, ``fcn16s``
                and ``fcn8s`` set it.
            encoder: ``vgg16`` (the paper's, fc6/fc7 as convolutions) or a timm encoder name.
            in_channels: input channels.
            pretrained: False, True (timm's VGG16 ImageNet weights, fc6/fc7 reshaped) or a weights file.
            fc_channels: width of fc6/fc7 (4096 in the paper; smaller for quick runs).

        Example:
            >>> model = pixelseg.models.create("fcn8s", num_classes=21)
            >>> model(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    def __init__(self, num_classes: int, skips: int, encoder: str = "vgg16", in_channels: int = 3,
                 pretrained: bool | str | Path = False, fc_channels: int | None = None) -> None:
        super().__init__()
        if encoder == "vgg16":
            self.encoder = VGG16Encoder(in_channels)
            he_initialisation(self.encoder)  # no batch norm: PyTorch's default init fades the signal by pool5
            fc_channels, fc_kernel = fc_channels or 4096, 7
        else:
            self.encoder = TimmEncoder(encoder, in_channels=in_channels, pretrained=pretrained)
            fc_channels, fc_kernel = fc_channels or 512, 3
        channels = self.encoder.channels
        self.head = FCNHead(channels, num_classes, skips=skips, fc_channels=fc_channels, fc_kernel_size=fc_kernel,
                            he_init_fc=encoder == "vgg16")
        self.size_divisor = 32
        if encoder == "vgg16" and pretrained:
            self._load_vgg(pretrained)

    def _load_vgg(self, pretrained: bool | str | Path) -> None:
        fc = vgg_fc_weights(self.encoder.load_imagenet(pretrained))
        if fc is not None:
            copy_into(self.head.fc6, fc["fc6.weight"], fc["fc6.bias"], pretrained)
            copy_into(self.head.fc7, fc["fc7.weight"], fc["fc7.bias"], pretrained)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))


@register_model("fcn32s")
def fcn32s(num_classes: int, **kwargs) -> FCN:
    """FCN-32s: VGG16, one 32x upsampling (Long et al., CVPR 2015)."""
    return FCN(num_classes, skips=0, **kwargs)


@register_model("fcn16s")
def fcn16s(num_classes: int, **kwargs) -> FCN:
    """FCN-16s: FCN-32s plus the pool4 skip (Long et al., CVPR 2015)."""
    return FCN(num_classes, skips=1, **kwargs)


@register_model("fcn8s")
def fcn8s(num_classes: int, **kwargs) -> FCN:
    """FCN-8s: FCN-16s plus the pool3 skip (Long et al., CVPR 2015)."""
    return FCN(num_classes, skips=2, **kwargs)
