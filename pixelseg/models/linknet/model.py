"""LinkNet: Chaurasia & Culurciello, "LinkNet: Exploiting Encoder Representations for Efficient Semantic
Segmentation", VCIP 2017.

Faithful: a ResNet-18 encoder (initial 7x7 conv + max pooling, four residual stages); decoder blocks of 1x1 conv
(m -> m/4), 3x3 full convolution x2, 1x1 conv (m/4 -> n), each with BN + ReLU; each decoder block's output is added
to the input of the encoder block of the same resolution (the link that gives LinkNet its name and its speed); a final
3x3 full conv, 3x3 conv and 2x2 full conv to the classes at the input's resolution. Differs: the encoder is any timm
backbone; on ResNets the first residual stage does not downsample, so the first decoder block does not upsample
(the paper's encoder block 1 has stride 2 and the paper's stem a 3x3 max pooling like ResNet's).
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.linknet.decoder import LinkNetClassifier, LinkNetDecoder
from pixelseg.models.registry import register_model


@register_model("linknet")
class LinkNet(SegmentationModel):
    """LinkNet: ResNet-18 encoder, decoder blocks added to the encoder's features (Chaurasia & Culurciello, 2017).

        Args:
            num_classes: output classes.
            encoder: timm encoder name (ResNet-18 in the paper); its stride-2 to stride-32 features are used.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's download) or a
                weights file.

        Example:
            >>> model = pixelseg.models.create("linknet", num_classes=11, encoder="resnet18")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 11, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet18", in_channels: int = 3,
                 pretrained: bool | str | Path = False) -> None:
        super().__init__()
        self.encoder = TimmEncoder(encoder, in_channels, pretrained)
        channels, reductions = self.encoder.channels, self.encoder.reductions
        self.decoder = LinkNetDecoder(channels, reductions)
        self.head = LinkNetClassifier(channels[1], num_classes)
        self.size_divisor = reductions[-1]

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(images)))
