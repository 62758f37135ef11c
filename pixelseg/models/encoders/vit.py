"""A timm Vision Transformer as a segmentation encoder: patch tokens of chosen blocks as feature maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from pixelseg.errors import ConfigError
from pixelseg.models.encoders.pretrained import encoder_normalisation
from pixelseg.models.encoders.timm_encoder import timm_pretrained_kwargs, weights_source
from pixelseg.utils import closest


class ViTEncoder(nn.Module):
    """The patch tokens of blocks ``indices`` of a timm ViT, as ``(N, D, H/p, W/p)`` maps after the final LayerNorm
    (the class token and other prefix tokens dropped); position embeddings are interpolated to each input's size
    (timm's ``dynamic_img_size``).

    Args:
        name: a timm ViT, e.g. ``vit_base_patch16_384`` (SETR, Segmenter) or ``vit_tiny_patch16_224``.
        in_channels: input channels.
        pretrained: False, True (timm's ImageNet weights) or a weights file.
        indices: which blocks' outputs to return (0-based); an int n: n evenly spaced blocks ending at the last
            (4 on ViT-L's 24 blocks: 5, 11, 17, 23, SETR-MLA's); None: the last one.
    """

    def __init__(self, name: str, in_channels: int = 3, pretrained: bool | str | Path = False,
                 indices: Sequence[int] | int | None = None) -> None:
        import timm

        super().__init__()
        if not name.startswith(("vit_", "deit")):
            raise ConfigError(f"a ViT encoder is needed (vit_base_patch16_384, ...), got {name!r}"
                              f"{closest(name, timm.list_models('vit_*'))}")
        try:
            self.model = timm.create_model(name, num_classes=0, in_chans=in_channels, dynamic_img_size=True,
                                           **timm_pretrained_kwargs(name, pretrained))
        except (OSError, RuntimeError, ValueError) as error:
            raise ConfigError(f"encoder {name!r} cannot be built: {error}") from None
        depth = len(self.model.blocks)
        if isinstance(indices, int):
            indices = [depth * (i + 1) // indices - 1 for i in range(indices)]
        self.indices = list(indices) if indices is not None else [depth - 1]
        if not all(0 <= i < depth for i in self.indices):
            raise ConfigError(f"{name} has blocks 0 to {depth - 1}; got indices {self.indices}")
        self.embed_dim = self.model.embed_dim
        self.name = name
        self.has_class_token = getattr(self.model, "cls_token", None) is not None
        self.patch_size = self.model.patch_embed.patch_size[0]
        self.weights_source = weights_source(name, pretrained)
        self.normalisation = encoder_normalisation(dict(self.model.pretrained_cfg or {}))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_intermediates(images, indices=self.indices, norm=True, output_fmt="NCHW",
                                                intermediates_only=True)

    def forward_raw(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Each chosen block's raw output (no final LayerNorm) as ``(map (N, D, h, w), class token (N, D) or None
        when the ViT has none)``: what a decoder that reads the class token into the patches needs (DPT)."""
        if not self.has_class_token:
            maps = self.model.forward_intermediates(images, indices=self.indices, norm=False, output_fmt="NCHW",
                                                    intermediates_only=True)
            return [(spatial, None) for spatial in maps]
        pairs = self.model.forward_intermediates(images, indices=self.indices, norm=False, output_fmt="NCHW",
                                                 intermediates_only=True, return_prefix_tokens=True)
        return [(spatial, prefix[:, 0]) for spatial, prefix in pairs]
