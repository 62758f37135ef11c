"""The single model registry: ``create(name, num_classes=..., **kwargs)`` and ``list_models()``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from pixelseg.errors import ConfigError
from pixelseg.utils import closest

_FACTORIES: dict[str, Callable] = {}


def register_model(name: str) -> Callable:
    """Decorator: register a model class (or factory) under ``name``."""

    def decorator(factory: Callable) -> Callable:
        if name in _FACTORIES:
            raise ValueError(f"model {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return decorator


def list_models() -> dict[str, str]:
    """Registered names and the first line of each one's docstring."""
    return {name: (factory.__doc__ or "").strip().splitlines()[0] for name, factory in sorted(_FACTORIES.items())}


def get_factory(name: str) -> Callable:
    """The class or function registered as ``name``; an unknown name is a ConfigError with a suggestion."""
    if name not in _FACTORIES:
        raise ConfigError(f"unknown model {name!r}{closest(name, _FACTORIES)}; `pixelseg models` lists them")
    return _FACTORIES[name]


def check_arguments(name: str, factory: Callable, kwargs: dict) -> None:
    """An argument the architecture does not take is a ConfigError naming it, with the closest valid one."""
    parameters = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    valid = [p for p in parameters if p not in ("self", "num_classes")]
    for key in kwargs:
        if key not in parameters:
            raise ConfigError(f"model {name!r} has no argument {key!r}{closest(key, valid)}; its arguments: "
                              f"{', '.join(valid)}")


def channel_values(values, channels: int) -> list[float]:
    """RGB normalisation values for ``channels`` inputs: grey takes their mean (timm sums a pretrained first layer's
    RGB filters for one channel), extra bands after RGB take it too."""
    values = [float(v) for v in values]
    if channels == len(values):
        return values
    average = sum(values) / len(values)
    return [average] if channels == 1 else (values + [average] * channels)[:channels]


def create(name: str, num_classes: int, **kwargs):
    """Build model ``name`` with ``num_classes`` outputs; kwargs go to the architecture (encoder, pretrained, ...)."""
    from pixelseg.models.base import guard_dilated_depthwise

    factory = get_factory(name)
    check_arguments(name, factory, kwargs)
    try:
        model = factory(num_classes=num_classes, **kwargs)
    except TypeError as error:
        raise ConfigError(f"model {name!r}: {error}") from None
    guard_dilated_depthwise(model)  # a PyTorch CPU bf16 gradient bug (pixelseg.models.base)
    # Stored so that the model can be rebuilt from its checkpoint alone; weights come from the checkpoint.
    model.config = {"name": name, "num_classes": num_classes, **{k: v for k, v in kwargs.items() if k != "pretrained"}}
    encoder = getattr(model, "encoder", None)
    normalisation = getattr(encoder, "normalisation", None) or (model.meta["mean"], model.meta["std"])
    # Inputs normalised as the encoder's pretrained weights expect (timm's pretrained_cfg), one value per input
    # channel: every inference path and the trainer read meta["mean"] / meta["std"].
    model.meta["mean"], model.meta["std"] = (channel_values(values, kwargs.get("in_channels", 3))
                                             for values in normalisation)
    if kwargs.get("pretrained") and getattr(encoder, "weights_source", None):
        model.meta["encoder_weights"] = encoder.weights_source
    return model


def parameter_count(name: str, num_classes: int = 21) -> int:
    """Parameters of architecture ``name`` at its default setting (``num_classes`` outputs), built on PyTorch's
    meta device (no memory, no initialisation) where the architecture allows it."""
    import torch

    try:
        with torch.device("meta"):
            model = create(name, num_classes=num_classes)
    except (NotImplementedError, RuntimeError):  # initialisers that read values (SegFormer's) need real tensors
        model = create(name, num_classes=num_classes)
    return sum(p.numel() for p in model.parameters())
