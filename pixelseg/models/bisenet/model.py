"""BiSeNet v1 and v2: real-time segmentation with a wide, shallow path for detail and a deep, narrow one for context.

- v1: Yu, Wang, Peng, Gao, Yu & Sang, "BiSeNet: Bilateral Segmentation Network for Real-time Semantic
  Segmentation", ECCV 2018.
- v2: Yu, Gao, Wang, Yu, Shen & Sang, "BiSeNet V2: Bilateral Network with Guided Aggregation for Real-time Semantic
  Segmentation", IJCV 2021.

Faithful (v1): a spatial path of three stride-2 conv-BN-ReLU layers (1/8); a context path on a ResNet-18 (1/16 and
1/32 features through attention refinement modules, global average pooling at the tail); the feature fusion module;
two auxiliary heads on the context path's 1/16 and 1/32 outputs (loss weight 1, the paper's alpha). Faithful (v2):
the detail branch (64/64/128 channels, 2/3/3 layers), the semantic branch (stem block, gather-and-expansion layers
with expansion 6, the context embedding block), the bilateral guided aggregation layer, and booster heads on the
semantic branch's 1/4, 1/8, 1/16 and 1/32 stages. Both: a 3x3 conv-BN-ReLU + 1x1 head, 8x bilinear upsampling.
Differs: v1's context encoder is any timm backbone (ResNet-18 by default, ImageNet weights optional); v2 is trained
from scratch, as in the paper; head widths are 256 (v1) and 1024 (v2) as in the authors' released configurations.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pixelseg.models.base import SegmentationModel
from pixelseg.models.bisenet.blocks import BilateralGuidedAggregation, DetailBranch, SemanticBranch
from pixelseg.models.bisenet.decoder import ContextPath, FeatureFusion, SegmentationHead, SpatialPath, resize
from pixelseg.models.encoders import TimmEncoder
from pixelseg.models.registry import register_model


@register_model("bisenetv1")
class BiSeNetV1(SegmentationModel):
    """BiSeNet: spatial path + context path (ResNet-18) fused by FFM, real-time (Yu et al., ECCV 2018).

        Args:
            num_classes: output classes.
            encoder: timm encoder of the context path (ResNet-18 in the paper) with 1/16 and 1/32 features.
            in_channels: input channels.
            pretrained: False, True (ImageNet weights: an installed weights package, else timm's download) or a
                weights file.
            aux_weight: weight of each of the two auxiliary losses in training (1 in the paper).

        Example:
            >>> model = pixelseg.models.create("bisenetv1", num_classes=11, encoder="resnet18")
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 11, 64, 96])
    """

    def __init__(self, num_classes: int, encoder: str = "resnet18", in_channels: int = 3,
                 pretrained: bool | str | Path = False, aux_weight: float = 1.0) -> None:
        super().__init__()
        self.spatial = SpatialPath(in_channels, 128)
        self.encoder = TimmEncoder(encoder, in_channels, pretrained)
        channels = self.encoder.channels
        self.context = ContextPath(channels[-2], channels[-1], 128)
        self.fusion = FeatureFusion(256, 256)
        self.head = SegmentationHead(256, num_classes)
        self.aux_weight = aux_weight
        heads = [SegmentationHead(128, num_classes, 64) for _ in range(2)]
        self.aux_heads = nn.ModuleList(heads) if aux_weight else None

    def forward_padded(self, images: torch.Tensor):
        spatial = self.spatial(images)
        features = self.encoder(images)
        context8, context16, context32 = self.context(features[-2], features[-1], spatial.shape[-2:])
        logits = resize(self.head(self.fusion(spatial, context8)), images.shape[-2:])
        if self.training and self.aux_heads is not None:
            aux = [resize(head(x), images.shape[-2:]) for head, x in zip(self.aux_heads, (context16, context32),
                                                                         strict=True)]
            return logits, *aux
        return logits


@register_model("bisenetv2")
class BiSeNetV2(SegmentationModel):
    """BiSeNet V2: detail + semantic branches, bilateral guided aggregation, booster heads (Yu et al., IJCV 2021).

        Args:
            num_classes: output classes.
            in_channels: input channels.
            aux_weight: weight of each of the four booster losses in training (1 in the paper).

        Example:
            >>> model = pixelseg.models.create("bisenetv2", num_classes=19)
            >>> model.eval()(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 19, 64, 96])
    """

    def __init__(self, num_classes: int, in_channels: int = 3, aux_weight: float = 1.0) -> None:
        super().__init__()
        self.detail = DetailBranch(in_channels)
        self.semantic = SemanticBranch(in_channels)
        self.aggregation = BilateralGuidedAggregation(128)
        self.head = SegmentationHead(128, num_classes, 1024)
        self.aux_weight = aux_weight
        boosters = [SegmentationHead(c, num_classes, 128) for c in (16, 32, 64, 128)]
        self.boosters = nn.ModuleList(boosters) if aux_weight else None

    def forward_padded(self, images: torch.Tensor):
        semantic, stages = self.semantic(images)
        logits = resize(self.head(self.aggregation(self.detail(images), semantic)), images.shape[-2:])
        if self.training and self.boosters is not None:
            return logits, *(resize(head(x), images.shape[-2:]) for head, x in zip(self.boosters, stages, strict=True))
        return logits

