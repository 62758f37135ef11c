"""Losses: cross-entropy (class weights, ignore index), OHEM cross-entropy, focal, soft Dice, Lovász-softmax, and
weighted sums of them.

A new loss is one :func:`register_loss` factory: the config, ``docs/config.md`` and the trainer take it from there."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence

from torch import nn

from pixelseg.constants import IGNORE_INDEX
from pixelseg.errors import ConfigError
from pixelseg.losses.losses import (
    CombinedLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    LovaszSoftmaxLoss,
    OhemCrossEntropyLoss,
)
from pixelseg.losses.weights import class_weights_from_counts
from pixelseg.utils import closest

LOSSES: dict[str, Callable[..., nn.Module]] = {}
"""The loss registry: name -> factory(class_weights, ignore_index, **options). A config's ``loss`` section takes
each name as a weight (``dice: 0.5``) and ``NAME_OPTION`` as that loss's option (``focal_gamma: 2``)."""


def register_loss(name: str) -> Callable:
    """Decorator: register a loss factory under ``name``; its keyword arguments after ``class_weights`` and
    ``ignore_index`` become the config keys ``NAME_ARGUMENT``."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in LOSSES:
            raise ValueError(f"loss {name!r} is registered twice")
        LOSSES[name] = factory
        return factory

    return decorator


def loss_options(name: str) -> dict[str, object]:
    """The options of loss ``name`` and their defaults (its factory's keyword arguments)."""
    parameters = inspect.signature(LOSSES[name]).parameters
    return {k: p.default for k, p in parameters.items() if k not in ("class_weights", "ignore_index")}


@register_loss("ce")
def cross_entropy(class_weights=None, ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0) -> nn.Module:
    """Cross-entropy, with the class weights and optional label smoothing.

    ``label_smoothing`` (``loss.ce_label_smoothing``) spreads that share of each target over all classes (Szegedy et
    al., CVPR 2016, section 7)."""
    if not 0 <= label_smoothing < 1:
        raise ConfigError(f"loss.ce_label_smoothing: {label_smoothing!r} must be at least 0 and below 1")
    return CrossEntropyLoss(class_weights, ignore_index, label_smoothing)


@register_loss("ohem")
def ohem(class_weights=None, ignore_index: int = IGNORE_INDEX, threshold: float = 0.7,
         min_kept: float = 0.1) -> nn.Module:
    """OHEM: cross-entropy on the hard pixels only (Shrivastava et al., CVPR 2016), with the class weights.

    Hard: label probability below ``threshold``; at least a ``min_kept`` fraction of the labelled pixels is kept."""
    return OhemCrossEntropyLoss(class_weights, ignore_index, threshold, min_kept)


@register_loss("focal")
def focal(class_weights=None, ignore_index: int = IGNORE_INDEX, gamma: float = 2.0) -> nn.Module:
    """Focal loss (Lin et al., ICCV 2017), with the class weights."""
    return FocalLoss(gamma, class_weights, ignore_index)


@register_loss("dice")
def dice(class_weights=None, ignore_index: int = IGNORE_INDEX, smooth: float = 1.0, squared: bool = False) -> nn.Module:
    """Soft Dice over the classes present (class weights not used); ``dice_squared: true`` is V-Net's form."""
    return DiceLoss(smooth, ignore_index, squared)


@register_loss("lovasz")
def lovasz(class_weights=None, ignore_index: int = IGNORE_INDEX) -> nn.Module:
    """Lovász-softmax (Berman et al., CVPR 2018): a surrogate of mIoU (class weights not used)."""
    return LovaszSoftmaxLoss(ignore_index)


def build_loss(weights: Mapping[str, float], class_weights: Sequence[float] | None = None,
               ignore_index: int = IGNORE_INDEX, focal_gamma: float | None = None,
               options: Mapping[str, Mapping[str, object]] | None = None) -> nn.Module:
    """A :class:`CombinedLoss` from ``{"ce": 1.0, "dice": 0.5, ...}``; zero weights are dropped. ``options`` maps a
    loss name to its keyword arguments (``{"focal": {"gamma": 2.0}}``)."""
    options = {name: dict(values) for name, values in (options or {}).items()}
    if focal_gamma is not None:
        options.setdefault("focal", {})["gamma"] = focal_gamma
    parts: dict[str, nn.Module] = {}
    for name, weight in weights.items():
        if name not in LOSSES:
            raise ConfigError(f"unknown loss {name!r}{closest(name, LOSSES)}; choose from {', '.join(LOSSES)}")
        if weight:
            parts[name] = LOSSES[name](class_weights, ignore_index, **options.get(name, {}))
    if not parts:
        raise ConfigError(f"the loss has no part with a non-zero weight (give one of {', '.join(LOSSES)} a weight)")
    return CombinedLoss(parts, {name: float(weights[name]) for name in parts})


__all__ = ["LOSSES", "CombinedLoss", "CrossEntropyLoss", "DiceLoss", "FocalLoss", "LovaszSoftmaxLoss",
           "OhemCrossEntropyLoss", "build_loss", "class_weights_from_counts", "loss_options", "register_loss"]
