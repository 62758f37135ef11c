"""Any pixelseg model with CRF-as-RNN layers on top, trained end to end (Zheng et al., ICCV 2015).

The paper appends the layer to FCN-8s; here ``base`` names any registered architecture, built with the remaining
keyword arguments. See :mod:`pixelseg.crf.crfasrnn` for what is faithful to the paper.
"""

from __future__ import annotations

import torch

from pixelseg.crf.crfasrnn import CRFasRNN
from pixelseg.data.transforms import denormalise
from pixelseg.models.base import SegmentationModel
from pixelseg.models.registry import create, register_model


@register_model("crfasrnn")
class CRFasRNNModel(SegmentationModel):
    """CRF-as-RNN: a base network followed by trainable mean-field CRF iterations (Zheng et al., 2015).

        Args:
            num_classes: output classes.
            base: the registered architecture producing the unary logits (FCN-8s in the paper).
            iterations: mean-field iterations unrolled in training (5 in the paper, 10 at test time there).
            **base_options: arguments of the base architecture (encoder, pretrained, ...).

        Example:
            >>> model = pixelseg.models.create("crfasrnn", num_classes=21, base="unet", encoder="resnet18")
            >>> model(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 21, 64, 96])
    """

    size_divisor = 1  # the base model pads for itself

    def __init__(self, num_classes: int, base: str = "fcn8s", iterations: int = 5, **base_options) -> None:
        super().__init__()
        if base == "crfasrnn":
            raise ValueError("base cannot itself be crfasrnn")
        self.base = create(base, num_classes=num_classes, **base_options)
        self.aux_weight = self.base.aux_weight
        self.crf = CRFasRNN(num_classes, iterations)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outputs = self.base(images)
        logits, *aux = outputs if isinstance(outputs, tuple) else (outputs,)
        rgb = (denormalise(images, self.meta["mean"], self.meta["std"]) * 255).clamp(0, 255)
        refined = self.crf(logits, rgb)
        return (refined, *aux) if aux else refined
