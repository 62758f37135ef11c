"""FCN head: fc6/fc7 as convolutions, score layers, learned 2x upsampling with skip fusion, fixed final upsampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import ProductTrainedConv2d, he_initialisation


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weights that make a transposed convolution a per-channel bilinear upsampling (as in the FCN code)."""
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    grid = torch.arange(kernel_size, dtype=torch.float64)
    profile = 1 - (grid - centre).abs() / factor
    kernel = (profile[:, None] * profile[None, :]).float()
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = kernel
    return weight


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable transposed convolution initialised to bilinear upsampling by ``factor``."""
    layer = nn.ConvTranspose2d(channels, channels, kernel_size=2 * factor, stride=factor, padding=factor // 2,
                               bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, 2 * factor))
    return layer


class FixedBilinearUpsample(nn.Module):
    """Per-channel bilinear upsampling by ``factor`` with the FCN kernel, not learned.

    The FCN paper fixes its final (8x, 16x, 32x) upsampling to bilinear interpolation and learns only the 2x steps;
    the reference Caffe nets set ``lr_mult: 0`` on that layer, and the paper's 134M parameters leave it out.
    """

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        kernel = bilinear_kernel(1, 2 * factor).expand(channels, 1, 2 * factor, 2 * factor).contiguous()
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.kernel.to(x.dtype), stride=self.factor, padding=self.factor // 2,
                                  groups=x.shape[1])


class FCNHead(nn.Module):
    """Scores from the stride-32 features (fc6, fc7, score_fr) fused with pool4 (16s) and pool3 (8s) scores.

    ``skips``: 0 for FCN-32s, 1 for FCN-16s, 2 for FCN-8s. ``he_init_fc``: fc6/fc7 start from He et al.'s Gaussian
    (for VGG16 without batch norm, trained from scratch); otherwise PyTorch's default.
    """

    def __init__(self, encoder_channels: list[int], num_classes: int, skips: int = 2, fc_channels: int = 4096,
                 fc_kernel_size: int = 7, dropout: float = 0.5, he_init_fc: bool = False) -> None:
        super().__init__()
        self.skips = skips
        # trained as a matrix product on the CPU, where oneDNN may have no fast kernel for its weight gradient
        self.fc6 = ProductTrainedConv2d(encoder_channels[-1], fc_channels, fc_kernel_size,
                                        padding=fc_kernel_size // 2)
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout2d(dropout)
        if he_init_fc:
            he_initialisation(self.fc6)
            he_initialisation(self.fc7)
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        # Skip scores start at zero, as in the FCN reference, so training starts from the coarser net's output.
        self.score_pool = nn.ModuleList()
        self.upscore2 = nn.ModuleList()
        for level in range(skips):
            score = nn.Conv2d(encoder_channels[-2 - level], num_classes, 1)
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
            self.score_pool.append(score)
            self.upscore2.append(bilinear_upsampler(num_classes, 2))
        self.final_factor = 32 >> skips
        self.upscore_final = FixedBilinearUpsample(num_classes, self.final_factor)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.dropout(self.relu(self.fc6(features[-1])))
        x = self.dropout(self.relu(self.fc7(x)))
        scores = self.score_fr(x)
        for level in range(self.skips):
            scores = self.upscore2[level](scores) + self.score_pool[level](features[-2 - level])
        return self.upscore_final(scores)
