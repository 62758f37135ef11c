"""pixelseg: semantic segmentation, from a folder of images and masks to a trained, evaluated model.

>>> import pixelseg
>>> model = pixelseg.models.create("unet", num_classes=4, encoder="resnet18")
>>> model = pixelseg.load("runs/demo/best.pt")
>>> prediction = model.predict("street.png")   # .labels (H, W), .probabilities (C, H, W)
"""

from pixelseg import models
from pixelseg.errors import CheckpointError, ConfigError, DataError, PixelsegError
from pixelseg.models import create, load, save_model

__version__ = "0.1.0"

__all__ = ["CheckpointError", "ConfigError", "DataError", "PixelsegError", "__version__", "create", "load", "models",
           "save_model"]
