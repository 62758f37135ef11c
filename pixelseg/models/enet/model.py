"""ENet: Paszke, Chaurasia, Kim & Culurciello, "ENet: A Deep Neural Network Architecture for Real-Time Semantic
Segmentation", arXiv 2016.

Faithful: the initial block; stage 1 (a downsampling bottleneck and four regular ones, dropout 0.01); stages 2 and
3 (regular, dilated 2/4/8/16 and asymmetric 5x5 bottlenecks, dropout 0.1, stage 2 starting with a downsampling
bottleneck); stages 4 and 5 (upsampling bottlenecks that max-unpool with the encoder's indices, no dropout); a
final 2x2 stride-2 transposed convolution to full resolution; PReLU in the encoder and ReLU in the decoder.
Widths and biases are those of the authors' Torch code (see blocks.py): 363,856 parameters for 12 classes, the
count of that code layer by layer; the paper states 0.37M, 1.7 % more, and gives no finer figure.
Differs: inputs are padded to a multiple of 8 and the output is cropped back; batch-norm epsilon is PyTorch's
default (1e-5, the Torch code used 1e-3).
"""

from __future__ import annotations

import torch
from torch import nn

from pixelseg.models.base import SegmentationModel
from pixelseg.models.enet.blocks import Bottleneck, DownsamplingBottleneck, InitialBlock, UpsamplingBottleneck
from pixelseg.models.registry import register_model


def _stage_2_or_3(dropout: float) -> nn.Sequential:
    return nn.Sequential(
        Bottleneck(128, dropout=dropout), Bottleneck(128, dilation=2, dropout=dropout),
        Bottleneck(128, asymmetric=True, dropout=dropout), Bottleneck(128, dilation=4, dropout=dropout),
        Bottleneck(128, dropout=dropout), Bottleneck(128, dilation=8, dropout=dropout),
        Bottleneck(128, asymmetric=True, dropout=dropout), Bottleneck(128, dilation=16, dropout=dropout))


@register_model("enet")
class ENet(SegmentationModel):
    """ENet: a real-time encoder-decoder for CPUs and edge devices (Paszke et al., 2016).

        Args:
            num_classes: output classes.
            in_channels: input channels.

        Example:
            >>> model = pixelseg.models.create("enet", num_classes=11)
            >>> sum(p.numel() for p in model.parameters())  # the paper's 0.37M
            363791
    """

    size_divisor = 8

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.initial = InitialBlock(in_channels, 16)
        self.down1 = DownsamplingBottleneck(16, 64, dropout=0.01)
        self.stage1 = nn.Sequential(*(Bottleneck(64, dropout=0.01) for _ in range(4)))
        self.down2 = DownsamplingBottleneck(64, 128, dropout=0.1)
        self.stage2 = _stage_2_or_3(0.1)
        self.stage3 = _stage_2_or_3(0.1)
        self.up4 = UpsamplingBottleneck(128, 64)
        self.stage4 = nn.Sequential(Bottleneck(64, dropout=0.0, relu=True), Bottleneck(64, dropout=0.0, relu=True))
        self.up5 = UpsamplingBottleneck(64, 16)
        self.stage5 = Bottleneck(16, dropout=0.0, relu=True)
        self.head = nn.ConvTranspose2d(16, num_classes, 2, stride=2)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.initial(images)
        x, indices1, size1 = self.down1(x)
        x = self.stage1(x)
        x, indices2, size2 = self.down2(x)
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.up4(x, indices2, size2))
        x = self.stage5(self.up5(x, indices1, size1))
        return self.head(x, output_size=images.shape[-2:])
