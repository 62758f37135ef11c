"""User-facing errors: each one names the file or setting at fault and says what is wrong.

The CLI prints these as one line and exits with status 2; anything else is a bug in pixelseg.
"""


class PixelsegError(Exception):
    """Base class of every error that is the user's input, not a pixelseg bug."""


class DataError(PixelsegError):
    """A dataset, image or mask that cannot be used (the message names the file)."""


class ConfigError(PixelsegError):
    """A config key or value that is unknown or invalid (the message suggests the closest valid one)."""


class CheckpointError(PixelsegError):
    """A checkpoint or model directory that cannot be loaded."""


class UnsafeFileError(CheckpointError):
    """A model or checkpoint file whose loading could run code (a pickle holding more than tensors and data)."""


class TrainingDiverged(PixelsegError, FloatingPointError):
    """A training loss that is no longer finite (the message names the epoch and batch, and what to change)."""
