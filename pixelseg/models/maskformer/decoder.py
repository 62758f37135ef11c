"""MaskFormer's pixel decoder and transformer predictor (Cheng, Schwing & Kirillov, NeurIPS 2021, Section 3.3)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _conv_gn(in_channels: int, out_channels: int, kernel_size: int, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
              nn.GroupNorm(min(32, out_channels), out_channels)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class PixelDecoder(nn.Module):
    """The FPN-style pixel decoder: lateral 1x1 convs (GroupNorm, no activation, as the authors' BasePixelDecoder),
    top-down 2x upsampling and sums, 3x3 output convs (GroupNorm + ReLU), and a 3x3 conv to the per-pixel
    embeddings at stride 4."""

    def __init__(self, encoder_channels: list[int], channels: int = 256, mask_dim: int = 256) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(_conv_gn(c, channels, 1, relu=False) for c in encoder_channels[:-1])
        self.top = _conv_gn(encoder_channels[-1], channels, 3)
        self.output = nn.ModuleList(_conv_gn(channels, channels, 3) for _ in encoder_channels[:-1])
        self.mask_features = nn.Conv2d(channels, mask_dim, 3, padding=1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.top(features[-1])
        for index in range(len(features) - 2, -1, -1):
            lateral = self.lateral[index](features[index])
            x = self.output[index](lateral + F.interpolate(x, size=lateral.shape[-2:], mode="nearest"))
        return self.mask_features(x)


def sine_position_embedding(x: torch.Tensor, channels: int, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's 2-D sine positional encoding of a (N, C, H, W) map, normalised coordinates, ``channels`` outputs."""
    n, _, h, w = x.shape
    half = channels // 2
    y_pos = torch.arange(1, h + 1, dtype=torch.float32, device=x.device)[:, None].expand(h, w) / h * 2 * math.pi
    x_pos = torch.arange(1, w + 1, dtype=torch.float32, device=x.device)[None, :].expand(h, w) / w * 2 * math.pi
    steps = temperature ** (2 * (torch.arange(half, device=x.device) // 2) / half)
    encodings = []
    for pos in (y_pos, x_pos):
        scaled = pos[..., None] / steps
        encodings.append(torch.stack([scaled[..., 0::2].sin(), scaled[..., 1::2].cos()], dim=-1).flatten(-2))
    return torch.cat(encodings, dim=-1).permute(2, 0, 1)[None].expand(n, -1, -1, -1).to(x.dtype)


class DecoderLayer(nn.Module):
    """A DETR decoder layer (post-norm): self-attention among the queries, cross-attention to the image features,
    feed-forward; the positional encodings added to queries and keys at every layer."""

    def __init__(self, width: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.feedforward = nn.Sequential(nn.Linear(width, feedforward), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                         nn.Linear(feedforward, width))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, query_pos, memory, memory_pos):
        q = queries + query_pos
        queries = self.norms[0](queries + self.dropout(self.self_attention(q, q, queries, need_weights=False)[0]))
        attended = self.cross_attention(queries + query_pos, memory + memory_pos, memory, need_weights=False)[0]
        queries = self.norms[1](queries + self.dropout(attended))
        return self.norms[2](queries + self.dropout(self.feedforward(queries)))


class TransformerPredictor(nn.Module):
    """N learnt queries decoded against the deepest features (projected to ``width``, sine positions) by ``layers``
    DETR layers; after every layer (deep supervision) a linear class head (K + 1 with "no object") and an MLP to a
    mask embedding whose dot product with the per-pixel embeddings gives that query's mask logits. In eval mode only
    the last layer's predictions are made (one list entry): the others serve the training loss alone."""

    def __init__(self, in_channels: int, num_classes: int, queries: int = 100, width: int = 256, layers: int = 6,
                 heads: int = 8, feedforward: int = 2048, dropout: float = 0.1, mask_dim: int = 256) -> None:
        super().__init__()
        self.project = nn.Conv2d(in_channels, width, 1)
        self.query_embedding = nn.Embedding(queries, width)
        self.layers = nn.ModuleList(DecoderLayer(width, heads, feedforward, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.class_head = nn.Linear(width, num_classes + 1)
        self.mask_head = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, width),
                                       nn.ReLU(inplace=True), nn.Linear(width, mask_dim))
        self.width = width

    def forward(self, deepest: torch.Tensor, pixel_embeddings: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        memory = self.project(deepest)
        memory_pos = sine_position_embedding(memory, self.width).flatten(2).transpose(1, 2)
        memory = memory.flatten(2).transpose(1, 2)
        query_pos = self.query_embedding.weight[None].expand(memory.shape[0], -1, -1)
        queries, predictions = torch.zeros_like(query_pos), []
        for index, layer in enumerate(self.layers):
            queries = layer(queries, query_pos, memory, memory_pos)
            if not self.training and index < len(self.layers) - 1:
                continue  # the intermediate predictions only feed the deep-supervision loss
            normed = self.norm(queries)
            masks = torch.einsum("nqc,nchw->nqhw", self.mask_head(normed), pixel_embeddings)
            predictions.append({"class_logits": self.class_head(normed), "mask_logits": masks})
        return predictions
