"""Dilated convolutions: Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016.

Faithful: the front-end: VGG16 without pool4 and pool5, conv5 at dilation 2 and fc6 as a 7x7 convolution at
dilation 4 (output stride 8; ImageNet fc6/fc7 weights load unchanged), dropout after fc6/fc7; the context module:
seven 3x3 layers at dilations 1, 1, 2, 4, 8, 16, 1 and a 1x1 layer, C channels (basic) or 2C to 32C (large), with
the paper's identity initialisation (the large module's generalised form with small noise); bilinear upsampling of
the 1/8 logits (the paper uses it too, Section 4). Differs: convolutions are padded ("same"), where the paper pads
the input by reflection and uses no padding in the network; the paper trains the front-end first and the context
module on its output, here both train together unless the front-end's weights are loaded first.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.errors import ConfigError
from pixelseg.models.base import SegmentationModel, he_initialisation
from pixelseg.models.dilation.decoder import ContextModule, FrontEndHead
from pixelseg.models.encoders import VGG16Encoder, copy_into, vgg_fc_weights
from pixelseg.models.registry import register_model


@register_model("dilation")
class DilatedNet(SegmentationModel):
    """Dilated convolutions: VGG16 front-end + context module, Dilation8 on CamVid (Yu & Koltun, ICLR 2016).

        Args:
            num_classes: output classes.
            in_channels: input channels.
            pretrained: False, True (timm's VGG16 ImageNet weights, fc6/fc7 included) or a VGG16 weights file.
            context: "basic", "large" (the paper's CamVid and Cityscapes models) or None (the front-end alone).
            fc_channels: width of fc6/fc7 (4096 in the paper; ImageNet fc weights need 4096).

        Example:
            >>> model = pixelseg.models.create("dilation", num_classes=11, context="large", fc_channels=256)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 11, 64, 96])
    """

    size_divisor = 8

    def __init__(self, num_classes: int, in_channels: int = 3, pretrained: bool | str | Path = False,
                 context: str | None = "large", fc_channels: int = 4096) -> None:
        super().__init__()
        if context not in ("basic", "large", None):
            raise ConfigError(f"context must be 'basic', 'large' or null, got {context!r}")
        self.encoder = VGG16Encoder(in_channels).make_atrous("frontend")
        he_initialisation(self.encoder)
        self.frontend = FrontEndHead(num_classes, fc_channels)
        he_initialisation(self.frontend)
        self.context = ContextModule(num_classes, large=context == "large") if context else nn.Identity()
        if pretrained:
            fc = vgg_fc_weights(self.encoder.load_imagenet(pretrained))
            if fc is not None:
                copy_into(self.frontend[0], fc["fc6.weight"], fc["fc6.bias"], pretrained)
                copy_into(self.frontend[3], fc["fc7.weight"], fc["fc7.bias"], pretrained)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.context(self.frontend(self.encoder(images)[-1]))
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
