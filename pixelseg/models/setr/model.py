"""SETR: Zheng, Lu, Zhao, Zhu, Luo, Wang, Fu, Feng, Xiang, Torr & Zhang, "Rethinking Semantic Segmentation from a
Sequence-to-Sequence Perspective with Transformers", CVPR 2021.

Faithful: a plain ViT encoder (16x16 patches, no downsampling stages; position embeddings interpolated to the input)
and the paper's three decoders on its tokens reshaped to a 1/16 map: naive (1x1 conv-BN-ReLU, 1x1 conv, bilinear
upsampling), PUP (four 3x3 conv + 2x upsampling steps) and MLA (four evenly spaced layers, top-down aggregation,
per-stream convs, 4x upsampling, concatenation). Differs: default encoder ViT-B/16-384 (the paper's best is ViT-L/16),
the ViT comes from timm, the decoders' auxiliary heads are not used, and the MLA streams take the final LayerNorm.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from pixelseg.errors import ConfigError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import ViTEncoder
from pixelseg.models.registry import register_model
from pixelseg.models.setr.decoder import DECODERS
from pixelseg.utils import closest


@register_model("setr")
class SETR(SegmentationModel):
    """SETR: a ViT encoder with the naive, PUP or MLA decoder (Zheng et al., CVPR 2021).

        Args:
            num_classes: output classes.
            encoder: a timm ViT (``vit_base_patch16_384`` by default; ``vit_large_patch16_384`` is the paper's).
            in_channels: input channels.
            pretrained: False, True (timm's ImageNet weights) or a weights file.
            decoder: "naive", "pup" (the paper's best on Cityscapes) or "mla" (its best on ADE20K).
            channels: width of the decoder (256).

        Example:
            >>> model = pixelseg.models.create("setr", num_classes=19, encoder="vit_tiny_patch16_224", decoder="mla")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 19, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "vit_base_patch16_384", in_channels: int = 3,
                 pretrained: bool | str | Path = False, decoder: str = "pup", channels: int = 256) -> None:
        super().__init__()
        if decoder not in DECODERS:
            raise ConfigError(f"unknown SETR decoder {decoder!r}{closest(decoder, DECODERS)}; choose from "
                              f"{', '.join(DECODERS)}")
        self.encoder = ViTEncoder(encoder, in_channels, pretrained, indices=4 if decoder == "mla" else None)
        self.decoder = DECODERS[decoder](self.encoder.embed_dim, num_classes, channels)
        self.size_divisor = self.encoder.patch_size

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.decoder(self.encoder(images))
        if x.shape[-2:] != images.shape[-2:]:
            x = F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return x
