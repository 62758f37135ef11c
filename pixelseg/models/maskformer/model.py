"""MaskFormer: Cheng, Schwing & Kirillov, "Per-Pixel Classification is Not All You Need for Semantic Segmentation",
NeurIPS 2021.

Faithful: a backbone (timm, ResNet-50 by default as in the paper's R50 model) and an FPN pixel decoder giving
per-pixel embeddings at stride 4; a transformer decoder of 6 DETR layers on the stride-32 features decodes N = 100
learnt queries; each query gets class scores over K + 1 classes ("no object") from a linear layer and a mask embedding
from a 2-hidden-layer MLP, whose dot products with the per-pixel embeddings are its mask logits; training matches
predictions to ground-truth segments with the Hungarian algorithm (SciPy's ``linear_sum_assignment``; cost: class
probability, mask focal 20 and dice 1) and sums cross-entropy (no-object weight 0.1), focal and dice losses over
every decoder layer (deep supervision); semantic inference is the paper's marginalisation,
``argmax_c sum_i p_i(c) sigmoid(m_i)``. Differs: the loss is computed at the masks' stride-4 resolution with the labels
taken by nearest neighbour (the paper upsamples the masks); pixelseg's configured loss is not used for this model.
The model returns the ``log`` of those per-class scores, so a softmax over them gives the scores normalised
over the classes (what TTA, the CRF and every inference path take as probabilities).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders import PYRAMID_STRIDES, TimmEncoder
from pixelseg.models.maskformer.decoder import PixelDecoder, TransformerPredictor
from pixelseg.models.maskformer.loss import MaskFormerLoss
from pixelseg.models.registry import register_model


def semantic_log_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor, size) -> torch.Tensor:
    """The paper's semantic inference: the masks upsampled to ``size``, then per class the sum over queries of
    p_q(c) sigmoid(m_q) ("no object" left out), returned as its log."""
    masks = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    marginals = torch.einsum("nqc,nqhw->nchw", class_logits.softmax(-1)[..., :-1], masks.sigmoid())
    return marginals.clamp_min(1e-6).log()


@register_model("maskformer")
class MaskFormer(SegmentationModel):
    """MaskFormer: mask classification with a transformer decoder and Hungarian matching (Cheng et al., 2021).

        Args:
            num_classes: output classes.
            encoder: timm encoder name with stride-4 to stride-32 features (ResNet-50 by default).
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's download) or a
                weights file.
            queries: N, the number of predicted masks (100).
            width: width of the transformer decoder and of the embeddings (256).
            layers: transformer decoder layers (6).

        Example:
            >>> model = pixelseg.models.create("maskformer", num_classes=150, encoder="resnet50")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 150, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet50", in_channels: int = 3,
                 pretrained: bool | str | Path = False, queries: int = 100, width: int = 256, layers: int = 6) -> None:
        super().__init__()
        self.encoder = TimmEncoder(encoder, in_channels, pretrained, strides=PYRAMID_STRIDES)
        channels = self.encoder.channels
        self.pixel_decoder = PixelDecoder(channels, width, width)
        self.predictor = TransformerPredictor(channels[-1], num_classes, queries, width, layers,
                                              heads=max(1, width // 32), feedforward=8 * width, mask_dim=width)
        self.criterion = MaskFormerLoss(num_classes)

    def forward_padded(self, images: torch.Tensor):
        features = self.encoder(images)
        predictions = self.predictor(features[-1], self.pixel_decoder(features))
        if self.training:
            return {"predictions": predictions, "padded_size": images.shape[-2:]}
        return semantic_log_scores(predictions[-1]["class_logits"], predictions[-1]["mask_logits"],
                                   images.shape[-2:])

    def training_loss(self, loss_fn, outputs, masks: torch.Tensor) -> torch.Tensor:
        """The set-prediction loss of the paper (``loss_fn``, the configured per-pixel loss, is not used)."""
        height, width = outputs["padded_size"]
        padded = F.pad(masks, (0, width - masks.shape[-1], 0, height - masks.shape[-2]),
                       value=self.criterion.ignore_index)
        return self.criterion(outputs["predictions"], padded)
