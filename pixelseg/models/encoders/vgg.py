"""VGG16 (Simonyan & Zisserman, ICLR 2015) as an encoder that returns every pooling stage.

Layer names follow torchvision and timm (``features.N``), so their ImageNet weights load unchanged.
The fully connected fc6/fc7 layers live in the FCN decoder as 7x7 and 1x1 convolutions.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.errors import CheckpointError
from pixelseg.models.encoders.pretrained import read_weights_file

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16Encoder(nn.Module):
    """VGG16 convolutions; ``forward`` returns the outputs of pool1..pool5 (strides 2..32)."""

    def __init__(self, in_channels: int = 3, batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        self.pool_positions: list[int] = []
        channels = in_channels
        for item in VGG16_CONFIG:
            if item == "M":
                self.pool_positions.append(len(layers))
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers.append(nn.Conv2d(channels, item, 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(item))
                layers.append(nn.ReLU(inplace=True))
                channels = item
        self.features = nn.Sequential(*layers)
        self.channels = [64, 128, 256, 512, 512]
        self.reductions = [2, 4, 8, 16, 32]
        self.batch_norm = batch_norm

    def imagenet_state(self, pretrained: bool | str | Path) -> dict[str, torch.Tensor]:
        if isinstance(pretrained, (str, Path)):
            return read_weights_file(pretrained)
        import timm

        name = "vgg16_bn.tv_in1k" if self.batch_norm else "vgg16.tv_in1k"
        try:
            return timm.create_model(name, pretrained=True).state_dict()
        except Exception as error:  # noqa: BLE001 - network or hub failure
            raise CheckpointError(f"could not fetch {name} ImageNet weights ({error}); without network access "
                                  "pass pretrained=PATH to a local VGG16 weights file") from None

    def load_imagenet(self, pretrained: bool | str | Path) -> dict[str, torch.Tensor]:
        """Load ``features.*`` weights; return the whole state (the FCN head takes fc6/fc7 from it)."""
        state = self.imagenet_state(pretrained)
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        missing, unexpected = self.features.load_state_dict(features, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{pretrained}: not VGG16 weights "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        return state

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        start = 0
        for position in self.pool_positions:
            images = self.features[start: position + 1](images)
            outputs.append(images)
            start = position + 1
        return outputs

    def forward_with_indices(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Size]]:
        """For SegNet: per stage, the pooled output, the max-pooling indices and the size before pooling."""
        outputs = []
        start = 0
        for position in self.pool_positions:
            images = self.features[start:position](images)
            size = images.shape
            images, indices = F.max_pool2d(images, 2, 2, return_indices=True)
            outputs.append((images, indices, size))
            start = position + 1
        return outputs
