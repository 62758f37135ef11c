"""Segmenter: Strudel, Garcia, Laptev & Schmid, "Segmenter: Transformer for Semantic Segmentation", ICCV 2021.

Faithful: a ViT encoder (patch tokens of the last block, position embeddings interpolated to the input); the linear
decoder or the mask transformer decoder: K learnt class embeddings appended to the projected patch tokens, 2
transformer blocks (``width / 64`` heads), L2-normalised patch and class embeddings whose scalar products are the
K masks, a LayerNorm over the classes, bilinear upsampling to the input. Differs: the ViT comes from timm (default
ViT-S/16, the paper's Seg-S; ViT-B/L for Seg-B/L), and the decoder width defaults to the encoder's.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from pixelseg.errors import ConfigError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import ViTEncoder
from pixelseg.models.registry import register_model
from pixelseg.models.segmenter.decoder import LinearDecoder, MaskTransformer


@register_model("segmenter")
class Segmenter(SegmentationModel):
    """Segmenter: ViT encoder + mask transformer decoder (Strudel et al., ICCV 2021).

        Args:
            num_classes: output classes.
            encoder: a timm ViT (``vit_small_patch16_384`` by default, Seg-S/16).
            in_channels: input channels.
            pretrained: False, True (timm's ImageNet weights) or a weights file.
            decoder: "mask" (the mask transformer) or "linear".
            layers: transformer blocks of the mask transformer (2 in the paper).
            width: width of the mask transformer (None: the encoder's embedding size).

        Example:
            >>> model = pixelseg.models.create("segmenter", num_classes=150, encoder="vit_tiny_patch16_224")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 150, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "vit_small_patch16_384", in_channels: int = 3,
                 pretrained: bool | str | Path = False, decoder: str = "mask", layers: int = 2,
                 width: int | None = None) -> None:
        super().__init__()
        self.encoder = ViTEncoder(encoder, in_channels, pretrained)
        dim = self.encoder.embed_dim
        if decoder == "mask":
            self.decoder = MaskTransformer(dim, num_classes, width or dim, layers)
        elif decoder == "linear":
            self.decoder = LinearDecoder(dim, num_classes)
        else:
            raise ConfigError(f"unknown Segmenter decoder {decoder!r}; choose 'mask' or 'linear'")
        self.size_divisor = self.encoder.patch_size

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.decoder(self.encoder(images)[-1])
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
