"""DPT: Ranftl, Bochkovskiy & Koltun, "Vision Transformers for Dense Prediction", ICCV 2021.

Faithful: a plain ViT encoder whose blocks 3, 6, 9 and 12 (ViT-B; 5, 12, 18, 24 on ViT-L) are reassembled, with the
class token read out by projection (the paper's best), into maps at 1/4, 1/8, 1/16 and 1/32 of the input with 96,
192, 384 and 768 channels (ViT-B; 256, 512, 1024, 1024 on ViT-L); RefineNet-style fusion blocks of pre-activation
residual units at 256 channels, with batch norm as the authors' segmentation model uses; the segmentation head
(3x3 conv, BN, ReLU, dropout 0.1, 1x1 conv, 2x upsampling). Differs: the ViT comes from timm (position embeddings
interpolated to each input); DPT-Hybrid's ResNet-50 stem is not built; the coarsest fusion block has no unused
residual unit (the authors' and Hugging Face's code create one that never runs), and the auxiliary head is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from pixelseg.errors import ConfigError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.dpt.decoder import DPTDecoder
from pixelseg.models.encoders import ViTEncoder
from pixelseg.models.registry import register_model

VIT_LARGE_BLOCKS = [4, 11, 17, 23]
"""The paper's blocks of ViT-L's 24 (0-based); on other depths, four evenly spaced ones (ViT-B: 2, 5, 8, 11)."""


def default_neck_channels(embed_dim: int) -> list[int]:
    """96, 192, 384, 768 for ViT-B (width 768); 256, 512, 1024, 1024 for ViT-L (1024); else width/8 ... width."""
    if embed_dim == 1024:
        return [256, 512, 1024, 1024]
    return [embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim]


@register_model("dpt")
class DPT(SegmentationModel):
    """DPT: ViT tokens reassembled into a pyramid and fused by residual units (Ranftl et al., ICCV 2021).

        Args:
            num_classes: output classes.
            encoder: a timm ViT (``vit_base_patch16_384``: DPT-Base; ``vit_large_patch16_384``: DPT-Large).
            in_channels: input channels.
            pretrained: False, True (timm's ImageNet weights) or a weights file.
            readout: how the class token enters the patch tokens: "project" (the paper's), "add" or "ignore".
            features: the fusion width (256).
            neck_channels: the four reassembled levels' widths (by default the paper's for ViT-B and ViT-L).
            blocks: the four transformer blocks read (0-based; by default the paper's).
            fusion_bn: batch norm in the fusion blocks' residual units (the segmentation model's; depth DPT has none).
            dropout: before the classifier (0.1).

        Example:
            >>> model = pixelseg.models.create("dpt", num_classes=19, encoder="vit_tiny_patch16_224", features=64)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 19, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "vit_base_patch16_384", in_channels: int = 3,
                 pretrained: bool | str | Path = False, readout: str = "project", features: int = 256,
                 neck_channels: Sequence[int] | None = None, blocks: Sequence[int] | None = None,
                 fusion_bn: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = ViTEncoder(encoder, in_channels, pretrained, indices=list(blocks) if blocks else 4)
        if blocks is None and len(self.encoder.model.blocks) == 24:
            self.encoder.indices = list(VIT_LARGE_BLOCKS)
        if len(self.encoder.indices) != 4:
            raise ConfigError(f"DPT reads four transformer blocks, got blocks={list(self.encoder.indices)}")
        if readout != "ignore" and not self.encoder.has_class_token:
            raise ConfigError(f"{encoder} has no class token: use readout: ignore")
        channels = list(neck_channels or default_neck_channels(self.encoder.embed_dim))
        self.decoder = DPTDecoder(self.encoder.embed_dim, num_classes, channels, features, readout, fusion_bn,
                                  dropout)
        self.size_divisor = 2 * self.encoder.patch_size  # the coarsest level is at 1/32 (ViT/16)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.forward_raw(images))
