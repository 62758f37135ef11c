"""The base every pixelseg architecture derives from (in the shape of segmentation_models_pytorch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.data.classes import ClassInfo
from pixelseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD


class SegmentationModel(nn.Module):
    """Logits at the input's resolution for any input size.

    Subclasses implement :meth:`forward_padded` for inputs whose sides are multiples of
    ``size_divisor``; :meth:`forward` pads the input (bottom/right, zeros = the mean colour after
    normalisation) and crops the logits back.

    ``meta`` carries what inference needs besides weights: classes, palette, normalisation and the
    scale the model was trained to predict at; it is saved with the weights.
    """

    size_divisor: int = 32
    aux_weight: float = 0.0
    """Weight of the auxiliary loss for models with an auxiliary head (PSPNet); 0 for the others."""

    def __init__(self) -> None:
        super().__init__()
        self.config: dict = {}
        self.meta: dict = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "inference_scale": 1.0}

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits for a padded batch; models with an auxiliary head return ``(logits, aux_logits)`` in training."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        height, width = images.shape[-2:]
        divisor = self.size_divisor
        pad_bottom, pad_right = (-height) % divisor, (-width) % divisor
        if pad_bottom or pad_right:
            images = F.pad(images, (0, pad_right, 0, pad_bottom))
        outputs = self.forward_padded(images)
        if isinstance(outputs, tuple):
            return tuple(self._to_input_size(o, images.shape[-2:], height, width) for o in outputs)
        return self._to_input_size(outputs, images.shape[-2:], height, width)

    @staticmethod
    def _to_input_size(logits: torch.Tensor, padded_size, height: int, width: int) -> torch.Tensor:
        if logits.shape[-2:] != padded_size:
            logits = F.interpolate(logits, size=padded_size, mode="bilinear", align_corners=False)
        return logits[..., :height, :width]

    @property
    def classes(self) -> ClassInfo:
        if "classes" in self.meta:
            return ClassInfo.from_dict(self.meta["classes"])
        return ClassInfo.numbered(self.config.get("num_classes", 0))

    def predict(self, image, **options):
        """Class map and probabilities for one image (path, PIL image or RGB array); see :func:`predict_image`."""
        from pixelseg.engine.inference import predict_image

        return predict_image(self, image, **options)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1,
                 relu: bool = True) -> nn.Sequential:
    """Same-size convolution (no bias), batch norm and, unless ``relu=False``, ReLU."""
    padding = dilation * (kernel_size // 2)
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
