"""The base every pixelseg architecture derives from (in the shape of segmentation_models_pytorch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.constants import IMAGENET_MEAN, IMAGENET_STD
from pixelseg.data.classes import ClassInfo


def he_initialisation(module: nn.Module) -> None:
    """Every convolution in ``module`` gets Gaussian weights with std sqrt(2/N), N the inputs feeding one output
    unit, and zero biases (He et al., "Delving Deep into Rectifiers", ICCV 2015): a signal keeps its scale through
    a deep stack of ReLU layers without batch norm, where PyTorch's default initialisation shrinks it at each layer.

    For a transposed convolution each output unit sees ``in_channels * kernel_area / stride_area`` inputs (the
    2x2 stride-2 up-convolution: ``in_channels``), not the fan-in ``nn.init.kaiming_normal_`` reads off the
    transposed weight's shape.
    """
    for conv in module.modules():
        if not isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
            continue
        kernel_area = conv.kernel_size[0] * conv.kernel_size[1]
        if isinstance(conv, nn.ConvTranspose2d):
            incoming = conv.in_channels * kernel_area // (conv.stride[0] * conv.stride[1])
        else:
            incoming = conv.in_channels // conv.groups * kernel_area
        nn.init.normal_(conv.weight, std=(2.0 / incoming) ** 0.5)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


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
    """Weight of each auxiliary loss for models with auxiliary heads (PSPNet, BiSeNet); 0 for the others."""

    def __init__(self) -> None:
        super().__init__()
        self.config: dict = {}
        self.meta: dict = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "inference_scale": 1.0}

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits for a padded batch; models with auxiliary heads return ``(logits, *aux_logits)`` in training."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        height, width = images.shape[-2:]
        divisor = self.size_divisor
        pad_bottom, pad_right = (-height) % divisor, (-width) % divisor
        if pad_bottom or pad_right:
            images = F.pad(images, (0, pad_right, 0, pad_bottom))
        outputs = self.forward_padded(images)
        if isinstance(outputs, dict):  # a model's own training outputs, scored by its training_loss (MaskFormer)
            return outputs
        if isinstance(outputs, tuple):
            return tuple(self._to_input_size(o, images.shape[-2:], height, width) for o in outputs)
        return self._to_input_size(outputs, images.shape[-2:], height, width)

    @staticmethod
    def _to_input_size(logits: torch.Tensor, padded_size, height: int, width: int) -> torch.Tensor:
        if logits.shape[-2:] != padded_size:
            logits = F.interpolate(logits, size=padded_size, mode="bilinear", align_corners=False)
        return logits[..., :height, :width]

    def training_loss(self, loss_fn, outputs, masks: torch.Tensor) -> torch.Tensor:
        """The training loss of ``outputs`` (what :meth:`forward` gave in training) against ``masks``: ``loss_fn`` on
        the logits plus ``aux_weight`` times it on each auxiliary head's logits. A model that learns another way
        (MaskFormer's set prediction) overrides this; the trainer calls nothing else."""
        if isinstance(outputs, tuple):
            logits, *aux_logits = outputs
            return loss_fn(logits, masks) + self.aux_weight * sum(loss_fn(aux, masks) for aux in aux_logits)
        return loss_fn(outputs, masks)

    @property
    def classes(self) -> ClassInfo:
        if "classes" in self.meta:
            return ClassInfo.from_dict(self.meta["classes"])
        return ClassInfo.numbered(self.config.get("num_classes", 0))

    def predict(self, image, **options):
        """Class map and probabilities for one image (path, PIL image or RGB array); see :func:`predict_image`."""
        from pixelseg.inference import predict_image

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


def convolution_as_matrix_product(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` as one matrix product over the unfolded input (im2col), for stride 1 without groups.

    The same arithmetic in another summation order, for the CPU convolutions whose weight gradient oneDNN computes
    with its reference loop (``ONEDNN_VERBOSE=1`` shows ``ref:any``), minutes a training step where the matrix
    product takes seconds (docs/performance.md): FCN's fc6 (7x7, 512 -> 4096 channels) on CPUs without AVX-512, and
    Dilation's fc6 (the same at dilation 4) on AVX-512 CPUs too.
    """
    if conv.stride != (1, 1) or conv.groups != 1:
        raise ValueError("convolution_as_matrix_product: only stride 1 without groups")
    batch, _, height, width = x.shape
    (kernel_h, kernel_w), (pad_h, pad_w), (dilation_h, dilation_w) = conv.kernel_size, conv.padding, conv.dilation
    columns = F.unfold(x, conv.kernel_size, dilation=conv.dilation, padding=conv.padding)  # (N, C*kh*kw, H'*W')
    out = conv.weight.flatten(1) @ columns
    if conv.bias is not None:
        out = out + conv.bias[:, None]
    return out.view(batch, -1, height + 2 * pad_h - dilation_h * (kernel_h - 1),
                    width + 2 * pad_w - dilation_w * (kernel_w - 1))


class ProductTrainedConv2d(nn.Conv2d):
    """A convolution computed by :func:`convolution_as_matrix_product` whenever it trains on the CPU (training mode,
    gradients wanted for its weight); inference, export and GPUs keep the convolution. A plain ``nn.Conv2d``'s
    weights and state-dict keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.device.type == "cpu" and torch.is_grad_enabled() and self.weight.requires_grad:
            return convolution_as_matrix_product(x, self)
        return super().forward(x)


class DilatedDepthwiseConv2d(nn.Conv2d):
    """A dilated depthwise convolution whose training step runs in float32 under CPU bf16 autocast.

    PyTorch 2.14's CPU kernel for the weight gradient of a bfloat16 depthwise convolution with dilation > 1 is
    wrong on channels-last inputs (relative error ~1 against float32; measured on AMX and AVX512-BF16 CPUs) and
    sometimes infinite: PSPNet on a dilated EfficientNet turned NaN within an epoch and DeepLabv3+'s separable ASPP
    trained on wrong gradients. The forward and the input gradient are right, so inference keeps bf16; only a
    training forward (grad enabled) leaves autocast for this layer. ``guard_dilated_depthwise`` swaps the class in
    place, so weights and state-dict keys are unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and torch.is_grad_enabled() and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def guard_dilated_depthwise(model: nn.Module) -> int:
    """Give every dilated depthwise ``nn.Conv2d`` in ``model`` :class:`DilatedDepthwiseConv2d`'s forward; returns
    how many."""
    count = 0
    for conv in model.modules():
        if (type(conv) is nn.Conv2d and conv.groups > 1 and conv.groups == conv.in_channels
                and max(conv.dilation) > 1):
            conv.__class__ = DilatedDepthwiseConv2d
            count += 1
    return count
