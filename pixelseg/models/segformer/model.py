"""SegFormer: Xie, Wang, Yu, Anandkumar, Alvarez & Luo, "SegFormer: Simple and Efficient Design for Semantic
Segmentation with Transformers", NeurIPS 2021.

Faithful: the Mix Transformer encoders MiT-B0 to B5 (:mod:`pixelseg.models.encoders.mix_transformer`: overlapping
patch embeddings, efficient self-attention with reduction ratios 8/4/2/1, Mix-FFN, stochastic depth 0.1) and the
all-MLP decoder (256 channels for B0/B1, 768 for B2-B5) predicting at stride 4, upsampled bilinearly.
Differs: weights are random unless ``pretrained=PATH`` names a state dict for the encoder (the ImageNet MiT
weights are not in timm); inputs are padded to a multiple of 32.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelseg.errors import CheckpointError, ConfigError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.encoders.mix_transformer import MIT_VARIANTS, MixTransformer
from pixelseg.models.encoders.pretrained import read_weights_file
from pixelseg.models.registry import register_model
from pixelseg.models.segformer.decoder import AllMLPDecoder
from pixelseg.utils import closest


def load_encoder_weights(encoder: torch.nn.Module, path: str | Path) -> None:
    """Load a MiT state dict (safetensors or a torch file) into ``encoder``; keys must match exactly."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: MiT weights file not found")
    state = read_weights_file(path)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: not loadable as MiT encoder weights ({str(error).splitlines()[0]})") from None


@register_model("segformer")
class SegFormer(SegmentationModel):
    """SegFormer: Mix Transformer encoder + all-MLP decoder, variants b0-b5 (Xie et al., NeurIPS 2021).

        Args:
            num_classes: output classes.
            variant: the Mix Transformer size, ``b0`` (3.7M parameters) to ``b5``.
            in_channels: input channels.
            pretrained: False or a local MiT weights file (``.pth`` or ``.safetensors``).
            drop_path: stochastic depth rate of the encoder (0.1 in the paper).

        Example:
            >>> model = pixelseg.models.create("segformer", num_classes=19, variant="b0")
            >>> model(torch.randn(1, 3, 64, 96)).shape
            torch.Size([1, 19, 64, 96])
    """

    def __init__(self, num_classes: int, variant: str = "b0", in_channels: int = 3,
                 pretrained: bool | str | Path = False, drop_path: float = 0.1) -> None:
        super().__init__()
        if variant not in MIT_VARIANTS:
            raise ConfigError(f"unknown SegFormer variant {variant!r}{closest(variant, MIT_VARIANTS)}; "
                              f"one of {', '.join(MIT_VARIANTS)}")
        if pretrained is True:
            raise ConfigError("SegFormer's ImageNet MiT weights are not in timm: pass pretrained=PATH to a state "
                              "dict of the encoder")
        settings = MIT_VARIANTS[variant]
        self.encoder = MixTransformer(settings, in_channels, drop_path)
        if pretrained:
            load_encoder_weights(self.encoder, pretrained)
        self.decoder = AllMLPDecoder(self.encoder.channels, num_classes, settings.decoder_dim)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))
