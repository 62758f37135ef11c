"""SegNet: Badrinarayanan, Kendall & Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder Architecture for
Image Segmentation", TPAMI 2017.

Faithful: the 13 convolutional layers of VGG16 with batch norm as the encoder; 2x2 max-pooling that stores its
indices; a mirrored decoder that upsamples by max-unpooling with those indices (no learned upsampling), each
followed by 3x3 conv + BN + ReLU layers, and a final convolution to the classes (29.4M parameters).
SegNet-Basic: four encoder stages of one 7x7 conv (64 channels) + BN + ReLU + pooling, and four decoder stages of
unpooling + 7x7 conv + BN (no ReLU in the decoder, as in the paper), then a 1x1 classifier.
Differs: the final SegNet layer is a 3x3 convolution to the classes without BN (the paper's decoder ends in a
conv + BN feeding softmax); any input size is padded to a multiple of 32.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import SegmentationModel, conv_bn_relu
from pixelseg.models.encoders import VGG16Encoder
from pixelseg.models.registry import register_model
from pixelseg.models.segnet.decoder import UnpoolingDecoder

SEGNET_DECODER = ((512, 512, 512, 512), (512, 512, 512, 256), (256, 256, 256, 128), (128, 128, 64), (64, 64))


@register_model("segnet")
class SegNet(SegmentationModel):
    """SegNet: VGG16-BN encoder, decoder upsampling with max-pooling indices (Badrinarayanan et al., TPAMI 2017).

        Args:
            num_classes: output classes.
            in_channels: input channels.
            pretrained: False, True (timm's ``vgg16_bn`` ImageNet weights) or a weights file.

        Example:
            >>> model = pixelseg.models.create("segnet", num_classes=11)
            >>> model(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 11, 64, 96])
    """

    def __init__(self, num_classes: int, in_channels: int = 3, pretrained: bool | str | Path = False) -> None:
        super().__init__()
        self.encoder = VGG16Encoder(in_channels, batch_norm=True)
        if pretrained:
            self.encoder.load_imagenet(pretrained)
        self.decoder = UnpoolingDecoder(SEGNET_DECODER)
        self.head = nn.Conv2d(64, num_classes, 3, padding=1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        pooling = self.encoder.forward_with_indices(images)
        return self.head(self.decoder(pooling[-1][0], pooling))


class SegNetBasicEncoder(nn.Module):
    def __init__(self, in_channels: int, channels: int = 64, depth: int = 4, kernel_size: int = 7) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            conv_bn_relu(in_channels if i == 0 else channels, channels, kernel_size) for i in range(depth))

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Size]]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            size = x.shape
            x, indices = F.max_pool2d(x, 2, 2, return_indices=True)
            outputs.append((x, indices, size))
        return outputs


@register_model("segnet_basic")
class SegNetBasic(SegmentationModel):
    """SegNet-Basic: 4 stages of 7x7 convs with index unpooling (Badrinarayanan et al., TPAMI 2017).

        Args:
            num_classes: output classes.
            in_channels: input channels.
            channels: channels of every stage (64 in the paper).

        Example:
            >>> model = pixelseg.models.create("segnet_basic", num_classes=11)
            >>> model(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 11, 64, 96])
    """

    size_divisor = 16

    def __init__(self, num_classes: int, in_channels: int = 3, channels: int = 64) -> None:
        super().__init__()
        self.encoder = SegNetBasicEncoder(in_channels, channels)
        self.decoder = UnpoolingDecoder([(channels, channels)] * 4, kernel_size=7, relu=False)
        self.head = nn.Conv2d(channels, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        pooling = self.encoder(images)
        return self.head(self.decoder(pooling[-1][0], pooling))
