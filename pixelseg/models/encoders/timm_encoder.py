"""Any timm backbone as a multi-scale feature encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from pixelseg.errors import CheckpointError, ConfigError
from pixelseg.models.encoders.pretrained import PACKAGED_WEIGHTS, encoder_normalisation, packaged_weights
from pixelseg.utils import closest


def timm_pretrained_kwargs(name: str, pretrained: bool | str | Path) -> dict:
    """timm keyword arguments for ``pretrained``: a path loads a local file; True takes the ImageNet weights of an
    installed weights package where there is one (:mod:`pixelseg.models.encoders.pretrained`), else downloads them
    through timm."""
    if isinstance(pretrained, (str, Path)) and str(pretrained) not in ("", "False", "false"):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise CheckpointError(f"{path}: pretrained weights file for encoder {name!r} not found")
        return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}
    if pretrained is True or str(pretrained) in ("True", "true"):
        packaged = packaged_weights(name)
        if packaged is not None:
            return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(packaged)}}
        return {"pretrained": True}
    return {"pretrained": False}


def weights_source(name: str, pretrained: bool | str | Path) -> str:
    """Where ``pretrained`` takes encoder ``name``'s weights from, in words (for logs and the model's meta)."""
    if not pretrained or str(pretrained) in ("", "False", "false"):
        return "none (random initialisation)"
    if str(pretrained) not in ("True", "true"):
        return f"file {pretrained}"
    entry = PACKAGED_WEIGHTS.get(name)
    found = entry.file() if entry is not None else None
    if found is not None:
        return f"ImageNet, from the installed package {entry.pip_name} ({found})"
    return "ImageNet, downloaded through timm"


PYRAMID_STRIDES = (4, 8, 16, 32)  # C2..C5: the levels FPN-style heads are defined on
ANY_SIZE_OPTIONS = {"swin": {"strict_img_size": False}}
"""timm options, by model-name prefix, that let a backbone built for one input size take any padded size."""


def any_size_options(name: str) -> dict:
    return next((dict(options) for prefix, options in ANY_SIZE_OPTIONS.items() if name.startswith(prefix)), {})


class TimmEncoder(nn.Module):
    """Features of a timm model at increasing strides (``features_only``).

    Args:
        name: a timm model name (``timm.list_models()``), e.g. ``resnet34``, ``convnext_tiny``.
        in_channels: input channels (1 for grayscale; timm adapts pretrained first-layer weights).
        pretrained: False, True (ImageNet weights: from an installed weights package where one exists, else
            downloaded through timm) or a local weights file.
        output_stride: 32, or 16 / 8 for dilated (atrous) encoders where timm supports it.
        out_indices: which feature levels to return (default all).
        timm_options: further keyword arguments for ``timm.create_model`` (HRNet's ``feature_location``, ...).
        strides: keep only the features at these strides, e.g. ``PYRAMID_STRIDES`` (4, 8, 16, 32): the C2..C5 of
            ResNet that FPN-style heads (FPN, UPerNet, GCN, RefineNet, MaskFormer) are defined on. An encoder with a
            stride-2 level too (ResNet's stem, EfficientNet) keeps it out, where taking every level would run such a
            head at stride 2 (6x UPerNet's FLOPs on EfficientNet-Lite2). ``channels`` and ``reductions`` follow.

    Features come back channels-first (NCHW) for every backbone, Swin's channels-last stages included.
    """

    def __init__(self, name: str, in_channels: int = 3, pretrained: bool | str | Path = False,
                 output_stride: int = 32, out_indices: Sequence[int] | None = None,
                 timm_options: dict | None = None, strides: Sequence[int] | None = None) -> None:
        import timm  # here, not at the top: timm (with torchvision) takes seconds to import, see pixelseg/__init__.py

        super().__init__()
        if name not in timm.list_models():
            raise ConfigError(f"unknown timm encoder {name!r}{closest(name, timm.list_models())}")
        kwargs: dict = {"features_only": True, "in_chans": in_channels, **timm_pretrained_kwargs(name, pretrained),
                        **any_size_options(name), **(timm_options or {})}
        if output_stride != 32:
            kwargs["output_stride"] = output_stride
        if out_indices is not None:
            kwargs["out_indices"] = tuple(out_indices)
        try:
            self.model = timm.create_model(name, **kwargs)
        except (OSError, RuntimeError, ValueError) as error:
            if kwargs.get("pretrained") and "pretrained_cfg_overlay" not in kwargs:
                raise CheckpointError(
                    f"could not fetch ImageNet weights for encoder {name!r} ({type(error).__name__}: {error}); "
                    "without network access pass pretrained=PATH to a local weights file") from None
            if "pretrained_cfg_overlay" in kwargs:
                weights = kwargs["pretrained_cfg_overlay"]["file"]
                raise CheckpointError(f"{weights}: not loadable as weights for encoder {name!r} ({error})") from None
            raise ConfigError(f"encoder {name!r} cannot be built with {kwargs}: {error}") from None
        self.weights_source = weights_source(name, pretrained)
        self.normalisation = encoder_normalisation(dict(self.model.pretrained_cfg or {}))
        """(mean, std) that the encoder's pretrained weights expect (timm's ``pretrained_cfg``), or None."""
        self.channels: list[int] = list(self.model.feature_info.channels())
        self.reductions: list[int] = list(self.model.feature_info.reduction())
        self.kept: list[int] | None = None  # indices of the features returned, None: all
        if strides is not None:
            if not all(stride in self.reductions for stride in strides):
                raise ConfigError(f"encoder {name!r} has no features at strides {', '.join(map(str, strides))} "
                                  f"(it has {self.reductions})")
            self.kept = [self.reductions.index(stride) for stride in strides]
            self.channels = [self.channels[i] for i in self.kept]
            self.reductions = [self.reductions[i] for i in self.kept]

    @classmethod
    def atrous(cls, name: str, in_channels: int = 3, pretrained: bool | str | Path = False,
               output_stride: int = 16) -> TimmEncoder:
        """A dilated encoder for DeepLab / PSPNet: output stride 8 or 16 (last stages dilated instead of strided)."""
        if output_stride not in (8, 16):
            raise ConfigError(f"output_stride must be 8 or 16, got {output_stride}")
        return cls(name, in_channels=in_channels, pretrained=pretrained, output_stride=output_stride)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = self.model(images)
        if getattr(self.model, "output_fmt", "NCHW") == "NHWC":  # Swin and other channels-last backbones
            features = [f.permute(0, 3, 1, 2).contiguous() for f in features]
        return features if self.kept is None else [features[i] for i in self.kept]
