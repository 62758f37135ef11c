"""Self-attention blocks for segmentation heads: non-local (Wang et al., CVPR 2018), DANet's position and channel
attention (Fu et al., CVPR 2019) and criss-cross attention (Huang et al., ICCV 2019), and the heads built on them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import conv_bn_relu


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al., eq. 1-3): ``z = W_z softmax(theta(x)^T phi(x)) g(x) + x``,
    theta/phi/g 1x1 convs to half the channels, ``W_z`` a 1x1 conv + BN whose scale starts at zero (so the block
    starts as the identity, Section 4.1)."""

    def __init__(self, channels: int, inner: int | None = None) -> None:
        super().__init__()
        inner = inner or channels // 2
        self.theta, self.phi, self.g = (nn.Conv2d(channels, inner, 1) for _ in range(3))
        self.out = nn.Sequential(nn.Conv2d(inner, channels, 1, bias=False), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.out[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        query = self.theta(x).flatten(2).transpose(1, 2)  # N x HW x C'
        key, value = self.phi(x).flatten(2), self.g(x).flatten(2).transpose(1, 2)
        attention = torch.softmax(query @ key, dim=-1)  # N x HW x HW
        y = (attention @ value).transpose(1, 2).reshape(n, -1, h, w)
        return x + self.out(y)


class _ResidualAttention(nn.Module):
    """Query and key 1x1 convs to C/8, a value 1x1 conv, and ``gamma`` (learnt from 0) weighing the attended
    features added to the input: the parts DANet's position attention and criss-cross attention share."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query, self.key = nn.Conv2d(channels, channels // 8, 1), nn.Conv2d(channels, channels // 8, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))


class PositionAttention(_ResidualAttention):
    """DANet's position attention module (Fig. 3A): ``gamma * V softmax(Q^T K) + x``, Q/K 1x1 convs to C/8,
    ``gamma`` learnt from 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        energy = self.query(x).flatten(2).transpose(1, 2) @ self.key(x).flatten(2)  # N x HW x HW
        out = self.value(x).flatten(2) @ torch.softmax(energy, dim=-1).transpose(1, 2)
        return self.gamma * out.reshape(n, c, h, w) + x


class ChannelAttention(nn.Module):
    """DANet's channel attention module (Fig. 3B): the C x C affinity of the features themselves, ``gamma * softmax(
    max - X X^T) X + x`` (the authors' code subtracts the energy from its row maximum), ``gamma`` learnt from 0."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flat = x.flatten(2)
        energy = flat @ flat.transpose(1, 2)  # N x C x C
        energy = energy.max(dim=-1, keepdim=True).values - energy
        out = torch.softmax(energy, dim=-1) @ flat
        return self.gamma * out.reshape(n, c, h, w) + x


class CrissCrossAttention(_ResidualAttention):
    """Criss-cross attention (Huang et al., Fig. 3): each position attends to the H + W - 1 positions of its row and
    column (one softmax over both, the position itself counted once), ``gamma * out + x``, Q/K 1x1 convs to C/8.
    Applied R = 2 times with shared weights (:class:`RecurrentCrissCross`) every position sees every other."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query, key, value = self.query(x), self.key(x), self.value(x)
        height = x.shape[-2]
        # energies along the column (N, H, W, H) and along the row (N, H, W, W)
        column = torch.einsum("nchw,ncgw->nhwg", query, key)
        column = column.masked_fill(torch.eye(height, dtype=torch.bool, device=x.device)[:, None, :], float("-inf"))
        row = torch.einsum("nchw,nchv->nhwv", query, key)
        attention = torch.softmax(torch.cat([column, row], dim=-1), dim=-1)
        along_column, along_row = attention[..., :height], attention[..., height:]
        out = torch.einsum("nhwg,ncgw->nchw", along_column, value) + torch.einsum("nhwv,nchv->nchw", along_row, value)
        return self.gamma * out + x


class RecurrentCrissCross(nn.Module):
    """Criss-cross attention applied ``recurrence`` times with the same weights (RCCA, R = 2 in the paper)."""

    def __init__(self, channels: int, recurrence: int = 2) -> None:
        super().__init__()
        self.attention, self.recurrence = CrissCrossAttention(channels), recurrence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.recurrence):
            x = self.attention(x)
        return x


class AttentionHead(nn.Module):
    """The head the non-local and CCNet papers put on a dilated ResNet: a 3x3 conv-BN-ReLU reducing the channels, the
    attention, a 3x3 conv-BN-ReLU, concatenation with the encoder's features, a 3x3 bottleneck conv-BN-ReLU, dropout
    and a 1x1 classifier (CCNet, Fig. 2)."""

    def __init__(self, in_channels: int, num_classes: int, attention: nn.Module, channels: int) -> None:
        super().__init__()
        self.reduce, self.attention = conv_bn_relu(in_channels, channels), attention
        self.after = conv_bn_relu(channels, channels)
        self.bottleneck = nn.Sequential(conv_bn_relu(in_channels + channels, channels), nn.Dropout2d(0.1),
                                        nn.Conv2d(channels, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.after(self.attention(self.reduce(x)))
        return self.bottleneck(torch.cat([x, y], dim=1))


class DANetHead(nn.Module):
    """DANet (Fig. 2): two branches, each a 3x3 conv-BN-ReLU to C/4, position or channel attention and a 3x3
    conv-BN-ReLU; their sum goes through dropout and a 1x1 classifier."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        inner = in_channels // 4
        self.position = nn.Sequential(conv_bn_relu(in_channels, inner), PositionAttention(inner),
                                      conv_bn_relu(inner, inner))
        self.channel = nn.Sequential(conv_bn_relu(in_channels, inner), ChannelAttention(), conv_bn_relu(inner, inner))
        self.classifier = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(inner, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.position(x) + self.channel(x))


def upsample_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)
