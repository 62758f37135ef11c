"""pixelseg: semantic segmentation, from a folder of images and masks to a trained, evaluated model.

>>> import pixelseg
>>> model = pixelseg.models.create("unet", num_classes=4, encoder="resnet18")
>>> model = pixelseg.load("runs/demo/best.pt")
>>> prediction = model.predict("street.png")   # .labels (H, W), .probabilities (C, H, W)

The architectures (and torch with them) load on first use of ``pixelseg.models``, ``create``, ``load`` or
``save_model``, and timm (with torchvision, about 3 s more) only when a timm encoder is built, so that
``pixelseg --help``, the classical methods and the command line's early error messages do not wait for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pixelseg.errors import CheckpointError, ConfigError, DataError, PixelsegError

if TYPE_CHECKING:
    from pixelseg import models
    from pixelseg.loading import load
    from pixelseg.models import create, save_model

__version__ = "0.1.0"

__all__ = ["CheckpointError", "ConfigError", "DataError", "PixelsegError", "__version__", "create", "load", "models",
           "save_model"]

_FROM_MODELS = ("create", "save_model")


def __getattr__(name: str) -> Any:
    """Import :mod:`pixelseg.models` (or :mod:`pixelseg.loading`) on first use of it or of one of its functions
    (PEP 562)."""
    if name == "load":
        return importlib.import_module("pixelseg.loading").load
    if name == "models" or name in _FROM_MODELS:
        models = importlib.import_module("pixelseg.models")
        return models if name == "models" else getattr(models, name)
    raise AttributeError(f"module 'pixelseg' has no attribute {name!r}")
