"""Training checkpoints, written atomically: a crash never leaves a half-written file under the final name."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from pixelseg.errors import CheckpointError
from pixelseg.io import atomic_path


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> None:
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any failure means an unreadable checkpoint
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from None
    for key in ("model", "optimizer", "epoch", "config"):
        if key not in state:
            raise CheckpointError(f"{path}: not a pixelseg training checkpoint (no {key!r} entry)")
    return state
