"""HRNetV2: Wang, Sun, Cheng, Jiang, Deng, Zhao, Liu, Mu, Tan, Wang, Liu & Xiao, "Deep High-Resolution
Representation Learning for Visual Recognition", TPAMI 2020 (Sun et al., CVPR 2019 for HRNetV1).

Faithful: the HRNet backbone (timm's ``hrnet_w18`` / ``hrnet_w32`` / ``hrnet_w48`` and the small variants) keeps a
stride-4 branch through the whole network, adds stride-8, -16 and -32 branches stage by stage and fuses all of them
repeatedly; the HRNetV2 head takes the raw outputs of the four branches (not the classification neck), upsamples them
to stride 4, concatenates them (270 channels for W18, 720 for W48), mixes them by a 1x1 conv-BN-ReLU and classifies
by a 1x1 conv; the logits are upsampled bilinearly. Differs: ImageNet weights come from timm (its download) or a file;
the paper's OCR and multi-scale testing are not part of this model.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from pixelseg.errors import ConfigError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.hrnet.decoder import HRNetV2Head
from pixelseg.models.registry import register_model


@register_model("hrnet")
class HRNet(SegmentationModel):
    """HRNetV2: parallel multi-resolution branches, all upsampled and concatenated for the head (Wang et al., 2020).

        Args:
            num_classes: output classes.
            encoder: a timm HRNet: ``hrnet_w18`` (HRNetV2-W18, default), ``hrnet_w48``, ``hrnet_w18_small``, ...
            in_channels: input channels.
            pretrained: False, True (ImageNet weights through timm) or a weights file.

        Example:
            >>> model = pixelseg.models.create("hrnet", num_classes=19, encoder="hrnet_w18_small")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 19, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "hrnet_w18", in_channels: int = 3,
                 pretrained: bool | str | Path = False) -> None:
        super().__init__()
        if not encoder.startswith("hrnet_w"):
            raise ConfigError(f"hrnet needs a timm HRNet encoder (hrnet_w18, hrnet_w48, ...), got {encoder!r}")
        # feature_location="" gives the branches' own outputs (18/36/72/144 channels for W18), the stem at index 0
        self.encoder = TimmEncoder(encoder, in_channels, pretrained, timm_options={"feature_location": ""})
        self.head = HRNetV2Head(self.encoder.channels[1:], num_classes)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.head(self.encoder(images)[1:])
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
