"""CRF-as-RNN: Zheng, Jayasumana, Romera-Paredes, Vineet, Su, Du, Huang & Torr, "Conditional Random Fields as
Recurrent Neural Networks", ICCV 2015.

The dense CRF's mean-field iterations (:mod:`pixelseg.crf.dense`) written as a differentiable layer, so that the
kernel weights and the label compatibility are learned together with the network that produces the unaries.

Faithful: unaries are the network's logits; each iteration filters Q with the smoothness and appearance kernels
(permutohedral lattice), weights the filter outputs with a learned (C, C) matrix per kernel (initialised to the
reference Potts weights on the diagonal), applies a learned compatibility (initialised to Potts, 1 - I), adds the
unaries and normalises; gradients flow to the logits, weights and compatibility (not to the kernel widths, which
are fixed, as in the paper). 5 iterations in training and at test time by default (the paper: 5 and 10).
"""

from __future__ import annotations

import torch
from torch import nn

from pixelseg.crf.dense import GaussianKernel, appearance_features, smoothness_kernel


class CRFasRNN(nn.Module):
    """Mean-field CRF layer: ``forward(logits (B, C, H, W), images (B, 3, H, W) RGB in 0..255)`` -> refined logits."""

    def __init__(self, num_classes: int, iterations: int = 5, smoothness_sxy: float = 3.0,
                 smoothness_weight: float = 3.0, appearance_sxy: float = 80.0, appearance_srgb: float = 13.0,
                 appearance_weight: float = 10.0) -> None:
        super().__init__()
        self.iterations = iterations
        self.smoothness_sxy, self.appearance_sxy, self.appearance_srgb = smoothness_sxy, appearance_sxy, appearance_srgb
        eye = torch.eye(num_classes)
        self.smoothness_weights = nn.Parameter(smoothness_weight * eye)
        self.appearance_weights = nn.Parameter(appearance_weight * eye)
        self.compatibility = nn.Parameter(1.0 - eye)

    def forward(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        # The mean field runs in float32 under autocast too: the lattice's sparse products have no bfloat16 kernel on
        # the CPU (training and prediction in bf16 stopped with "addmm_out_sparse_csr_impl_mkl" before).
        with torch.autocast(logits.device.type, enabled=False):
            return self.mean_field(logits, images)

    def mean_field(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        refined = []
        for image_logits, image in zip(logits, images, strict=True):
            num_classes, height, width = image_logits.shape
            with torch.no_grad():
                smoothness = smoothness_kernel(height, width, float(self.smoothness_sxy), str(image.device))
                rgb = image.detach().permute(1, 2, 0).float()
                appearance = GaussianKernel(appearance_features(rgb, self.appearance_sxy, self.appearance_srgb))
            unary = image_logits.float().reshape(num_classes, -1)
            current = unary
            for _ in range(self.iterations):
                q = torch.softmax(current, 0)
                filtered = self.smoothness_weights @ smoothness(q) + self.appearance_weights @ appearance(q)
                current = unary - self.compatibility @ filtered
            refined.append(current.reshape(num_classes, height, width).to(image_logits.dtype))
        return torch.stack(refined)
