"""Training checkpoints, written atomically: a crash never leaves a half-written file under the final name."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from pixelseg.io import atomic_path, read_checkpoint


def rng_state() -> dict:
    """The random generators' states as tensors and plain data, which ``weights_only`` loading accepts."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                   "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                       numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    np.random.set_state(numpy_state)  # a tuple with an array: checkpoints written before pixelseg 0.2
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> None:
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint (``last.pt``, ``best.pt``), read without running code from it."""
    return read_checkpoint(path, ("model", "optimizer", "epoch", "config"), kind="pixelseg training checkpoint")
