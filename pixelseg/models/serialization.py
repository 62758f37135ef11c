"""Saving whole models (weights as safetensors plus a JSON config) and rebuilding one from its config and weights;
reading them from files is :mod:`pixelseg.loading`'s."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from pixelseg.errors import CheckpointError, PixelsegError
from pixelseg.io import atomic_path, read_checkpoint, write_text
from pixelseg.models.base import SegmentationModel
from pixelseg.models.registry import create

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_model(model: SegmentationModel, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory``; :func:`load` rebuilds the model.

    ``dtype`` (for example ``torch.float16``) stores the floating-point weights at that precision, half the size;
    :func:`load` gives them back as float32.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    with atomic_path(directory / WEIGHTS_FILE) as temporary:
        save_file(state, str(temporary))
    write_text(directory / CONFIG_FILE, json.dumps({"model": model.config, "meta": model.meta}, indent=2))
    return directory


def build_from_config(model_config: dict, meta: dict | None, state: dict, source: Path) -> SegmentationModel:
    config = dict(model_config)
    try:
        name, num_classes = config.pop("name"), config.pop("num_classes")
        model = create(name, num_classes=num_classes, **config)
    except KeyError as error:
        raise CheckpointError(f"{source}: model config lacks {error}") from None
    except PixelsegError as error:
        raise CheckpointError(f"{source}: cannot rebuild the model ({error})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[:3]
        raise CheckpointError(f"{source}: weights do not fit {name} with {num_classes} classes: "
                              f"{' '.join(first)}") from None
    model.meta.update(meta or {})
    return model.eval()


def load_model_directory(path: Path, map_location: str | torch.device = "cpu") -> SegmentationModel:
    """A model folder written by :func:`pixelseg.save_model`: ``config.json`` + ``model.safetensors``."""
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{path}: a model directory needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    from safetensors.torch import load_file

    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        state = load_file(str(path / WEIGHTS_FILE), device=str(map_location))
        model_config, meta = config["model"], config.get("meta")
    except Exception as error:  # noqa: BLE001 - any failure means an unreadable model directory
        raise CheckpointError(f"{path}: unreadable model directory ({error})") from None
    return build_from_config(model_config, meta, state, path)


def load_saved(path: str | Path, map_location: str | torch.device = "cpu") -> SegmentationModel:
    """A model from a model folder or a training checkpoint (``best.pt``), ready in eval mode."""
    path = Path(path)
    if path.is_dir():
        return load_model_directory(path, map_location)
    checkpoint = read_checkpoint(path, ("model", "model_config"), map_location=map_location)
    return build_from_config(checkpoint["model_config"], checkpoint.get("model_meta"), checkpoint["model"], path)
