"""Yu & Koltun's front-end head and context module (ICLR 2016, Sections 3-4, Table 1)."""

from __future__ import annotations

import torch
from torch import nn

from pixelseg.models.base import ProductTrainedConv2d

CONTEXT_DILATIONS = (1, 1, 2, 4, 8, 16, 1)
"""Dilations of layers 1-7 of the context module (Table 1); layer 8 is a 1x1 convolution."""
LARGE_WIDTHS = (2, 2, 4, 8, 16, 32, 32)
"""The large context module's widths, in multiples of C (Table 1); the basic module keeps C everywhere."""


class FrontEndHead(nn.Sequential):
    """fc6 as a 7x7 convolution at dilation 4 (VGG16's fc6 weights apply unchanged), fc7 1x1, dropout 0.5 after each,
    fc8 1x1 to the classes. fc6 trains as a matrix product on the CPU: oneDNN's weight gradient for it takes about two
    minutes for one 176x240 crop, on AVX-512 CPUs too (:class:`ProductTrainedConv2d`, docs/performance.md)."""

    def __init__(self, num_classes: int, channels: int = 4096) -> None:
        super().__init__(ProductTrainedConv2d(512, channels, 7, padding=12, dilation=4), nn.ReLU(inplace=True),
                         nn.Dropout2d(0.5),
                         nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                         nn.Conv2d(channels, num_classes, 1))


def identity_initialisation(conv: nn.Conv2d, noise: float = 0.0) -> None:
    """The paper's identity initialisation, generalised to different widths (Section 3, last paragraph):
    ``k(t, a) = C / c_out`` at the centre tap ``t = 0`` where ``floor(a C / c_in) = floor(b C / c_out)`` (a input, b
    output feature), else Gaussian noise of std ``noise``; biases zero. With equal widths it is the identity."""
    c_out, c_in = conv.out_channels, conv.in_channels
    classes = min(c_out, c_in)
    with torch.no_grad():
        conv.weight.normal_(0.0, noise) if noise else conv.weight.zero_()
        centre = conv.kernel_size[0] // 2, conv.kernel_size[1] // 2
        inputs = torch.arange(c_in) * classes // c_in
        outputs = torch.arange(c_out) * classes // c_out
        match = outputs[:, None] == inputs[None, :]
        conv.weight[:, :, centre[0], centre[1]][match] = classes / c_out
        conv.bias.zero_()


class ContextModule(nn.Sequential):
    """Seven 3x3 convolutions at dilations 1, 1, 2, 4, 8, 16, 1 (receptive field 67x67 at the front-end's output)
    with ReLU, then a 1x1 convolution; C = the number of classes in and out, widths ``C`` (basic) or 2C ... 32C
    (large); identity initialisation, so that training starts from the front-end's prediction."""

    def __init__(self, num_classes: int, large: bool = False) -> None:
        widths = [num_classes * w for w in LARGE_WIDTHS] if large else [num_classes] * len(CONTEXT_DILATIONS)
        layers: list[nn.Module] = []
        previous = num_classes
        for width, dilation in zip(widths, CONTEXT_DILATIONS, strict=True):
            layers += [nn.Conv2d(previous, width, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True)]
            previous = width
        layers.append(nn.Conv2d(previous, num_classes, 1))
        super().__init__(*layers)
        for conv in self:
            if isinstance(conv, nn.Conv2d):
                identity_initialisation(conv, noise=1e-3 if large else 0.0)
