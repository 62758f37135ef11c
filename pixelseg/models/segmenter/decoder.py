"""Segmenter's decoders (Strudel et al., ICCV 2021, Section 3.2): the linear decoder and the mask transformer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearDecoder(nn.Module):
    """A point-wise linear layer from each patch embedding to class logits."""

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(embed_dim, num_classes, 1)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.classifier(patches)


class MaskTransformer(nn.Module):
    """K learnt class embeddings processed jointly with the patch tokens by ``layers`` transformer blocks; the masks
    are the scalar products of the L2-normalised patch and class embeddings, normalised by a LayerNorm over the
    classes (the authors' ``mask_norm``)."""

    def __init__(self, embed_dim: int, num_classes: int, width: int = 768, layers: int = 2) -> None:
        from timm.models.vision_transformer import Block

        super().__init__()
        self.project_in = nn.Linear(embed_dim, width)
        self.class_embeddings = nn.Parameter(torch.randn(1, num_classes, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, num_heads=max(1, width // 64), qkv_bias=True) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.project_patches = nn.Parameter(torch.randn(width, width) * width ** -0.5)
        self.project_classes = nn.Parameter(torch.randn(width, width) * width ** -0.5)
        self.mask_norm = nn.LayerNorm(num_classes)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        n, _, h, w = patches.shape
        tokens = self.project_in(patches.flatten(2).transpose(1, 2))
        classes = self.class_embeddings.expand(n, -1, -1)
        x = torch.cat([tokens, classes], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        tokens, classes = x[:, :h * w] @ self.project_patches, x[:, h * w:] @ self.project_classes
        masks = F.normalize(tokens, dim=-1) @ F.normalize(classes, dim=-1).transpose(1, 2)  # N x HW x K
        return self.mask_norm(masks).transpose(1, 2).reshape(n, -1, h, w)
