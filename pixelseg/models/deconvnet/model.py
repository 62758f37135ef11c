"""DeconvNet: Noh, Hong & Han, "Learning Deconvolution Network for Semantic Segmentation", ICCV 2015.

Faithful: a VGG16 encoder with batch normalisation after every convolution, max pooling that records its
switches; fc6 (7x7, 4096), fc7 (1x1, 4096) and the 7x7 deconvolution of fc6 back to 512 channels, all with BN; a
decoder that mirrors the encoder: unpooling with the recorded switches followed by 3x3 deconvolution layers with
BN + ReLU (the channel layout of Table 1), and a 1x1 classifier; about 252M parameters, as the paper counts.
Differs: fc6 and its deconvolution are padded so any input size works (the paper runs 224x224 object proposals, where
pool5 is 7x7 and fc6 gives 1x1); the stride-1 "deconvolution" layers of the decoder are written as 3x3 convolutions,
which they equal up to a flip of the kernel; the paper's instance-wise training and proposal ensembling are not part
of the model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pixelseg.models.base import SegmentationModel
from pixelseg.models.deconvnet.decoder import DECONVNET_DECODER, DeconvNetCentre
from pixelseg.models.encoders import VGG16Encoder
from pixelseg.models.registry import register_model
from pixelseg.models.segnet.decoder import UnpoolingDecoder


@register_model("deconvnet")
class DeconvNet(SegmentationModel):
    """DeconvNet: VGG16-BN, fc6/fc7, a mirrored decoder of unpooling + deconvolution layers (Noh et al., ICCV 2015).

        Args:
            num_classes: output classes.
            in_channels: input channels.
            pretrained: False, True (timm's ``vgg16_bn`` ImageNet weights for the convolutions) or a weights file.
            fc_channels: width of fc6/fc7 (4096 in the paper; smaller for quick runs).

        Example:
            >>> model = pixelseg.models.create("deconvnet", num_classes=21, fc_channels=256)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    def __init__(self, num_classes: int, in_channels: int = 3, pretrained: bool | str | Path = False,
                 fc_channels: int = 4096) -> None:
        super().__init__()
        self.encoder = VGG16Encoder(in_channels, batch_norm=True)
        if pretrained:
            self.encoder.load_imagenet(pretrained)
        self.centre = DeconvNetCentre(fc_channels)
        self.decoder = UnpoolingDecoder(DECONVNET_DECODER)
        self.head = nn.Conv2d(64, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        pooling = self.encoder.forward_with_indices(images)
        return self.head(self.decoder(self.centre(pooling[-1][0]), pooling))
