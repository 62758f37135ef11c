"""Global Convolutional Network blocks, Boundary Refinement and the GCN decoder (Peng et al., CVPR 2017)."""

from __future__ import annotations

import torch
from torch import nn

from pixelseg.models.fcn.decoder import bilinear_upsampler


class GlobalConvolution(nn.Module):
    """A k x k receptive field from two separable paths, (k x 1 then 1 x k) + (1 x k then k x 1), with no
    non-linearity or batch norm between them (Fig. 2(b))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 15) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.left = nn.Sequential(nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0)),
                                  nn.Conv2d(out_channels, out_channels, (1, kernel_size), padding=(0, pad)))
        self.right = nn.Sequential(nn.Conv2d(in_channels, out_channels, (1, kernel_size), padding=(0, pad)),
                                   nn.Conv2d(out_channels, out_channels, (kernel_size, 1), padding=(pad, 0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.left(x) + self.right(x)


class BoundaryRefinement(nn.Module):
    """``x + conv3x3(relu(conv3x3(x)))``, a residual block on the score maps (Fig. 2(c))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


def _upsample_x2(channels: int) -> nn.ConvTranspose2d:
    """A learnt 2x deconvolution, initialised bilinear as in FCN."""
    return bilinear_upsampler(channels, factor=2)


class GCNDecoder(nn.Module):
    """Fig. 2(a): GCN + BR on each of res2..res5 gives score maps; from the deepest, each is upsampled x2 by a
    deconvolution, added to the next shallower one and refined by another BR; two more deconv + BR steps reach the
    input's resolution from stride 4."""

    def __init__(self, channels: list[int], num_classes: int, kernel_size: int = 15) -> None:
        super().__init__()
        self.gcn = nn.ModuleList(GlobalConvolution(c, num_classes, kernel_size) for c in channels)
        self.refine = nn.ModuleList(BoundaryRefinement(num_classes) for _ in channels)
        self.fuse_refine = nn.ModuleList(BoundaryRefinement(num_classes) for _ in channels[:-1])
        self.up = nn.ModuleList(_upsample_x2(num_classes) for _ in channels[:-1])
        self.final = nn.ModuleList(nn.Sequential(_upsample_x2(num_classes), BoundaryRefinement(num_classes))
                                   for _ in range(2))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        scores = [refine(gcn(f)) for gcn, refine, f in zip(self.gcn, self.refine, features, strict=True)]
        x = scores[-1]
        for index in range(len(scores) - 2, -1, -1):
            x = self.up[index](x)[..., :scores[index].shape[-2], :scores[index].shape[-1]]
            x = self.fuse_refine[index](x + scores[index])
        for step in self.final:
            x = step(x)
        return x
