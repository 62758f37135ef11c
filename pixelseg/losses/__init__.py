"""Losses: cross-entropy (class weights, ignore index), focal, soft Dice, and weighted sums of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from pixelseg.constants import IGNORE_INDEX
from pixelseg.errors import ConfigError
from pixelseg.losses.losses import CombinedLoss, CrossEntropyLoss, DiceLoss, FocalLoss
from pixelseg.losses.weights import class_weights_from_counts
from pixelseg.utils import closest

LOSSES = {"ce": CrossEntropyLoss, "focal": FocalLoss, "dice": DiceLoss}


def build_loss(weights: Mapping[str, float], class_weights: Sequence[float] | None = None,
               ignore_index: int = IGNORE_INDEX, focal_gamma: float = 2.0) -> nn.Module:
    """A :class:`CombinedLoss` from ``{"ce": 1.0, "dice": 0.5, ...}``; zero weights are dropped."""
    parts: dict[str, nn.Module] = {}
    for name, weight in weights.items():
        if name not in LOSSES:
            raise ConfigError(f"unknown loss {name!r}{closest(name, LOSSES)}; choose from {', '.join(LOSSES)}")
        if not weight:
            continue
        if name == "ce":
            parts[name] = CrossEntropyLoss(class_weights, ignore_index)
        elif name == "focal":
            parts[name] = FocalLoss(focal_gamma, class_weights, ignore_index)
        else:
            parts[name] = DiceLoss(ignore_index=ignore_index)
    if not parts:
        raise ConfigError("the loss has no part with a non-zero weight (set loss.ce, loss.focal or loss.dice)")
    return CombinedLoss(parts, {name: float(weights[name]) for name in parts})


__all__ = ["LOSSES", "CombinedLoss", "CrossEntropyLoss", "DiceLoss", "FocalLoss", "build_loss",
           "class_weights_from_counts"]
