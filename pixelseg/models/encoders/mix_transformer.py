"""Mix Transformer (MiT), SegFormer's hierarchical encoder (Xie et al., NeurIPS 2021).

Four stages at strides 4, 8, 16, 32. Each starts with an overlapping patch embedding (a strided convolution with
a kernel larger than its stride: 7/4 then 3/2) and stacks transformer blocks whose self-attention shortens the keys
and values by a reduction ratio R (8, 4, 2, 1) with a strided convolution ("efficient self-attention"), and whose
feed-forward layer has a 3x3 depth-wise convolution between its two linear layers (Mix-FFN) instead of positional
encodings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MiTSettings:
    embed_dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int] = (1, 2, 5, 8)
    reduction_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)
    mlp_ratio: int = 4
    decoder_dim: int = 768


MIT_VARIANTS = {
    "b0": MiTSettings((32, 64, 160, 256), (2, 2, 2, 2), decoder_dim=256),
    "b1": MiTSettings((64, 128, 320, 512), (2, 2, 2, 2), decoder_dim=256),
    "b2": MiTSettings((64, 128, 320, 512), (3, 4, 6, 3)),
    "b3": MiTSettings((64, 128, 320, 512), (3, 4, 18, 3)),
    "b4": MiTSettings((64, 128, 320, 512), (3, 8, 27, 3)),
    "b5": MiTSettings((64, 128, 320, 512), (3, 6, 40, 3)),
}


class OverlapPatchEmbed(nn.Module):
    def __init__(self, in_channels: int, dim: int, patch_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride, padding=patch_size // 2)
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        height, width = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), height, width


class EfficientSelfAttention(nn.Module):
    """Multi-head attention whose keys and values come from the sequence shortened R^2 times."""

    def __init__(self, dim: int, num_heads: int, reduction_ratio: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.reduction_ratio = reduction_ratio
        if reduction_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, reduction_ratio, reduction_ratio)
            self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, length, dim = x.shape
        heads = self.num_heads
        q = self.q(x).reshape(batch, length, heads, dim // heads).transpose(1, 2)
        if self.reduction_ratio > 1:
            grid = x.transpose(1, 2).reshape(batch, dim, height, width)
            x = self.norm(self.sr(grid).flatten(2).transpose(1, 2))
        k, v = self.kv(x).reshape(batch, -1, 2, heads, dim // heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


class MixFFN(nn.Module):
    """Linear, 3x3 depth-wise convolution, GELU, linear: the convolution leaks enough position information."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = self.fc1(x)
        batch, length, hidden = x.shape
        x = self.dwconv(x.transpose(1, 2).reshape(batch, hidden, height, width)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for a whole sample with probability ``p`` in training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.ndim - 1)), device=x.device) >= self.p
        return x * keep / (1 - self.p)


class MiTBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, reduction_ratio: int, mlp_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = EfficientSelfAttention(dim, num_heads, reduction_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MixFFN(dim, dim * mlp_ratio)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))


class MixTransformer(nn.Module):
    """The MiT encoder; ``forward`` returns the four feature maps (strides 4, 8, 16, 32)."""

    def __init__(self, settings: MiTSettings, in_channels: int = 3, drop_path: float = 0.1) -> None:
        super().__init__()
        self.channels = list(settings.embed_dims)
        rates = torch.linspace(0, drop_path, sum(settings.depths)).tolist()
        self.patch_embeds, self.blocks, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        previous, first = in_channels, 0
        for stage, (dim, depth) in enumerate(zip(settings.embed_dims, settings.depths, strict=True)):
            patch, stride = (7, 4) if stage == 0 else (3, 2)
            self.patch_embeds.append(OverlapPatchEmbed(previous, dim, patch, stride))
            self.blocks.append(nn.ModuleList(
                MiTBlock(dim, settings.num_heads[stage], settings.reduction_ratios[stage], settings.mlp_ratio,
                         rates[first + i]) for i in range(depth)))
            self.norms.append(nn.LayerNorm(dim, eps=1e-6))
            previous, first = dim, first + depth
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for embed, blocks, norm in zip(self.patch_embeds, self.blocks, self.norms, strict=True):
            x, height, width = embed(x)
            for block in blocks:
                x = block(x, height, width)
            x = norm(x).transpose(1, 2).reshape(x.shape[0], -1, height, width)
            features.append(x)
        return features
