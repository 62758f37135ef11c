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


def vgg_fc_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """fc6 / fc7 of an ImageNet VGG16 state (timm's ``pre_logits.fc1/fc2`` or torchvision's ``classifier.0/3``) as
    ``{"fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias"}`` as stored (fc6 4096 x 25088 for ImageNet's VGG16);
    None if absent."""
    for fc6, fc7 in (("pre_logits.fc1", "pre_logits.fc2"), ("classifier.0", "classifier.3")):
        if f"{fc6}.weight" in state and f"{fc7}.weight" in state:
            return {"fc6.weight": state[f"{fc6}.weight"], "fc6.bias": state[f"{fc6}.bias"],
                    "fc7.weight": state[f"{fc7}.weight"], "fc7.bias": state[f"{fc7}.bias"]}
    return None


def copy_into(layer: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor, source) -> None:
    """ImageNet weights into a convolution of the same number of values, reshaped; else a CheckpointError."""
    if weight.numel() != layer.weight.numel():
        raise CheckpointError(f"{source}: ImageNet weights of shape {tuple(weight.shape)} do not fit a layer of "
                              f"shape {tuple(layer.weight.shape)}")
    with torch.no_grad():
        layer.weight.copy_(weight.reshape(layer.weight.shape))
        layer.bias.copy_(bias)


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

    def make_atrous(self, style: str) -> VGG16Encoder:
        """Output stride 8 the two ways of the DeepLab and Dilated-Convolution papers, keeping the layer names (so
        ImageNet weights still load): ``"deeplab"`` (Chen et al., ICLR 2015, Section 3.1): 3x3 poolings with padding,
        pool4 and pool5 at stride 1, conv5 at dilation 2; ``"frontend"`` (Yu & Koltun, ICLR 2016, Section 4): pool4
        and pool5 removed, conv5 at dilation 2."""
        for index, position in enumerate(self.pool_positions):
            if style == "deeplab":
                self.features[position] = nn.MaxPool2d(3, stride=2 if index < 3 else 1, padding=1)
            elif style == "frontend" and index >= 3:
                self.features[position] = nn.Identity()
            elif style not in ("deeplab", "frontend"):
                raise ValueError(f"unknown atrous VGG style {style!r}")
        conv5 = [m for m in self.features[self.pool_positions[3] + 1:] if isinstance(m, nn.Conv2d)]
        for conv in conv5:
            conv.dilation, conv.padding = (2, 2), (2, 2)
        self.reductions = [2, 4, 8, 8, 8]
        return self

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
