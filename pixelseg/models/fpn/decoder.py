"""Feature pyramid (top-down pathway with lateral connections) and the semantic segmentation branch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FeaturePyramid(nn.Module):
    """P2..P5: 1x1 laterals on C2..C5, nearest 2x top-down additions, 3x3 output convs (Lin et al., CVPR 2017);
    ``smoothing=False`` leaves the output convs out (as segmentation_models_pytorch's FPN does)."""

    def __init__(self, in_channels: Sequence[int], channels: int = 256, smoothing: bool = True) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.outputs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) if smoothing else nn.Identity()
                                     for _ in in_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [lateral(f) for lateral, f in zip(self.laterals, features, strict=True)]
        for level in range(len(laterals) - 1, 0, -1):
            upsampled = F.interpolate(laterals[level], size=laterals[level - 1].shape[-2:], mode="nearest")
            laterals[level - 1] = laterals[level - 1] + upsampled
        return [output(x) for output, x in zip(self.outputs, laterals, strict=True)]


class SemanticBranch(nn.Module):
    """Each level: repeated (3x3 conv, GroupNorm, ReLU, 2x bilinear upsampling) down to 1/4 scale; summed
    (Kirillov et al., "Panoptic Feature Pyramid Networks", CVPR 2019)."""

    def __init__(self, num_levels: int, in_channels: int = 256, channels: int = 128) -> None:
        super().__init__()
        self.levels = nn.ModuleList()
        for level in range(num_levels):
            steps = max(1, level)
            layers: list[nn.Module] = []
            for step in range(steps):
                layers += [nn.Conv2d(in_channels if step == 0 else channels, channels, 3, padding=1, bias=False),
                           nn.GroupNorm(32, channels), nn.ReLU(inplace=True)]
                if level > 0:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.levels.append(nn.Sequential(*layers))
        self.out_channels = channels

    def forward(self, pyramid: Sequence[torch.Tensor]) -> torch.Tensor:
        size = pyramid[0].shape[-2:]
        merged = 0
        for branch, x in zip(self.levels, pyramid, strict=True):
            y = branch(x)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            merged = merged + y
        return merged
