"""Loading a model from whatever holds one: a model folder, a training checkpoint, an ONNX file or the name of a
shipped model. This module sits above :mod:`pixelseg.models` and :mod:`pixelseg.engine` (both import nothing from
it), so that neither has to import the other to read a file; every ``.pt`` goes through the safe loader.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelseg.errors import CheckpointError
from pixelseg.models.base import SegmentationModel
from pixelseg.models.serialization import load_saved

SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
"""Models that ship with the package, loadable by name: ``pixelseg.load("camvid")`` (see docs/models/)."""


def load(path: str | Path, map_location: str | torch.device = "cpu") -> SegmentationModel:
    """A ready model (eval mode) from a model directory, a training checkpoint (``best.pt``, ``last.pt``), an ONNX
    file written by ``pixelseg export`` (run by onnxruntime) or the name of a shipped model (``"camvid"``)."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".onnx" and path.is_file():
        from pixelseg.engine.backends import OnnxModel

        return OnnxModel(path)
    if not path.exists() and len(path.parts) == 1 and (SHIPPED_DIR / path.name).is_dir():
        path = SHIPPED_DIR / path.name
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or model directory")
    return load_saved(path, map_location)


def load_fastest(source: str | Path, verbose: bool = True):
    """``pixelseg.load(source)`` on the fastest path that keeps its accuracy (an ONNX file runs as it is)."""
    from pixelseg.engine.auto_backend import auto_backend, model_validation_data

    model = load(source)
    if getattr(model, "backend", None) == "onnx":
        return model
    path = Path(source)
    folder = path if path.is_dir() else SHIPPED_DIR / path.name if (SHIPPED_DIR / path.name).is_dir() else None
    return auto_backend(model, folder, model_validation_data(model), verbose=verbose)
