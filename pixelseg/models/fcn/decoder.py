"""FCN head: fc6/fc7 as convolutions, score layers, learned 2x upsampling with skip fusion, fixed final upsampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.models.base import he_initialisation


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


def convolution_as_matrix_product(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` as one matrix product over the unfolded input (im2col), for stride 1 and no dilation or groups.

    The same arithmetic in another summation order. FCN trains its fc6 (a 7x7 convolution, 512 -> 4096 channels,
    102.8M weights) this way on the CPU: on a 6x8 map (a 176x240 crop at stride 32) oneDNN's AVX2 build has no fast
    kernel for that weight gradient and falls back to its reference loop (``ONEDNN_VERBOSE=1`` shows ``ref:any``),
    minutes a training step; as a matrix product it is seconds (docs/performance.md).
    """
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
        raise ValueError("convolution_as_matrix_product: only stride 1 without dilation or groups")
    batch, _, height, width = x.shape
    (kernel_h, kernel_w), (pad_h, pad_w) = conv.kernel_size, conv.padding
    columns = F.unfold(x, conv.kernel_size, padding=conv.padding)  # (N, C*kh*kw, H'*W')
    out = conv.weight.flatten(1) @ columns
    if conv.bias is not None:
        out = out + conv.bias[:, None]
    return out.view(batch, -1, height + 2 * pad_h - kernel_h + 1, width + 2 * pad_w - kernel_w + 1)


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
        self.fc6 = nn.Conv2d(encoder_channels[-1], fc_channels, fc_kernel_size, padding=fc_kernel_size // 2)
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
        top = features[-1]
        train_fc6_as_product = (self.training and top.device.type == "cpu" and torch.is_grad_enabled()
                                and self.fc6.weight.requires_grad)  # inference and export keep the convolution
        x = convolution_as_matrix_product(top, self.fc6) if train_fc6_as_product else self.fc6(top)
        x = self.dropout(self.relu(x))
        x = self.dropout(self.relu(self.fc7(x)))
        scores = self.score_fr(x)
        for level in range(self.skips):
            scores = self.upscore2[level](scores) + self.score_pool[level](features[-2 - level])
        return self.upscore_final(scores)
