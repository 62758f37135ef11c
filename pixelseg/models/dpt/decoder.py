"""DPT's decoder (Ranftl, Bochkovskiy & Koltun, ICCV 2021, Section 3 and Fig. 1): reassemble the tokens of four
transformer blocks into an image-like pyramid, then fuse it from the coarsest level with residual convolution
units, as RefineNet does."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.errors import ConfigError
from pixelseg.utils import closest

READOUTS = ("project", "add", "ignore")


class Reassemble(nn.Module):
    """One level of the pyramid from one block's tokens (the paper's Reassemble_s^D-hat, eq. 2-5): the class token
    read out into every patch token (``project``: concatenated and projected by a linear layer + GELU; ``add``;
    ``ignore``), a 1x1 conv to ``channels``, resampled by ``factor`` (a strided transposed conv for 4 and 2, none for
    1, a strided 3x3 conv for 0.5), then a 3x3 conv to the fusion width."""

    def __init__(self, embed_dim: int, channels: int, factor: float, features: int, readout: str) -> None:
        super().__init__()
        self.readout = readout
        self.project_readout = (nn.Sequential(nn.Linear(2 * embed_dim, embed_dim), nn.GELU())
                                if readout == "project" else None)
        self.project = nn.Conv2d(embed_dim, channels, 1)
        if factor > 1:
            self.resample = nn.ConvTranspose2d(channels, channels, int(factor), stride=int(factor))
        elif factor == 1:
            self.resample = nn.Identity()
        else:
            self.resample = nn.Conv2d(channels, channels, 3, stride=round(1 / factor), padding=1)
        self.to_features = nn.Conv2d(channels, features, 3, padding=1, bias=False)

    def forward(self, tokens: torch.Tensor, class_token: torch.Tensor | None) -> torch.Tensor:
        if self.readout == "project":
            n, d, h, w = tokens.shape
            flat = tokens.flatten(2).transpose(1, 2)
            flat = self.project_readout(torch.cat([flat, class_token[:, None].expand_as(flat)], dim=-1))
            tokens = flat.transpose(1, 2).reshape(n, d, h, w)
        elif self.readout == "add":
            tokens = tokens + class_token[:, :, None, None]
        return self.to_features(self.resample(self.project(tokens)))


class ResidualConvUnit(nn.Module):
    """Pre-activation residual unit: ``x + conv(relu(conv(relu(x))))``, with batch norm after each conv when ``bn``
    (then the convs have no bias)."""

    def __init__(self, channels: int, bn: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm2d(channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Fusion(nn.Module):
    """One fusion block (Fig. 1, right): the finer level through a residual unit added to the coarser path, a second
    residual unit, 2x bilinear upsampling and a 1x1 projection. The coarsest block has no finer level to add."""

    def __init__(self, channels: int, bn: bool, first: bool) -> None:
        super().__init__()
        self.lateral = None if first else ResidualConvUnit(channels, bn)
        self.refine = ResidualConvUnit(channels, bn)
        self.project = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, lateral: torch.Tensor | None = None) -> torch.Tensor:
        if self.lateral is not None:
            x = x + self.lateral(lateral)
        x = F.interpolate(self.refine(x), scale_factor=2, mode="bilinear", align_corners=True)
        return self.project(x)


class DPTDecoder(nn.Module):
    """Reassemble four blocks' tokens at 1/4, 1/8, 1/16 and 1/32 of the input, fuse them from the coarsest, and
    classify at 1/2 (3x3 conv-BN-ReLU, dropout, 1x1 conv) before a last 2x bilinear upsampling: the segmentation
    head of the paper's Section 4.2."""

    def __init__(self, embed_dim: int, num_classes: int, neck_channels: list[int], features: int = 256,
                 readout: str = "project", fusion_bn: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ConfigError(f"unknown DPT readout {readout!r}{closest(readout, READOUTS)}; choose from "
                              f"{', '.join(READOUTS)}")
        if len(neck_channels) != 4:
            raise ConfigError(f"DPT reassembles four blocks: neck_channels needs 4 widths, got {neck_channels}")
        factors = (4, 2, 1, 0.5)
        self.reassemble = nn.ModuleList(Reassemble(embed_dim, c, f, features, readout)
                                        for c, f in zip(neck_channels, factors, strict=True))
        self.fusion = nn.ModuleList(Fusion(features, fusion_bn, first=i == 0) for i in range(4))
        self.head = nn.Sequential(nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features),
                                  nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Conv2d(features, num_classes, 1))

    def forward(self, blocks: list[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor:
        levels = [reassemble(tokens, token) for reassemble, (tokens, token) in zip(self.reassemble, blocks,
                                                                                     strict=True)]
        x = self.fusion[0](levels[-1])
        for fusion, lateral in zip(self.fusion[1:], reversed(levels[:-1]), strict=True):
            x = fusion(x, lateral)
        return F.interpolate(self.head(x), scale_factor=2, mode="bilinear", align_corners=True)
