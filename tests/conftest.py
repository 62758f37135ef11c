from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from pixelseg.data import make_shapes_dataset

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # `make test` runs one pytest worker per core (pytest-xdist):
    os.environ["OMP_NUM_THREADS"] = "1"          # one thread each, for the workers and the commands they start
    torch.set_num_threads(1)
else:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

FREE_AT_START = pytest.StashKey[int]()


def pytest_sessionstart(session) -> None:
    session.config.stash[FREE_AT_START] = shutil.disk_usage(tempfile.gettempdir()).free


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Print the free space of the temporary folder's disk: CI's machine has little, and the suite writes there."""
    if FREE_AT_START in config.stash:
        folder = tempfile.gettempdir()
        terminalreporter.write_line(f"disk free for {folder}: {config.stash[FREE_AT_START] / 2**20:,.0f} MiB at the "
                                    f"start, {shutil.disk_usage(folder).free / 2**20:,.0f} MiB at the end")


SHARED_DATA = Path(os.environ.get("PIXELSEG_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory) -> Path:
    """A tiny generated dataset in the folder layout (shared by the tests that only read it)."""
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), num_train=16, num_val=4, height=48, width=64)


def tiny_config(data_root: Path, out_dir: Path, **train) -> dict:
    """A config that trains a small U-Net on the shapes dataset in seconds.

    RegNetX-200MF (2.4M parameters) rather than ResNet-18 (11.2M): a run folder holds 68 MiB instead of 306 MiB
    (last.pt and best.pt carry the AdamW moments) and trains twice as fast, with the same learning on the shapes.
    """
    return {
        "model": {"name": "unet", "encoder": "regnetx_002", "decoder_channels": [32, 16, 16, 8, 8]},
        "data": {"layout": "folder", "root": str(data_root), "crop_size": [48, 64], "scale_range": [0.8, 1.2],
                 "workers": 0},
        "loss": {"ce": 1.0, "dice": 0.5},
        "optimizer": {"lr": 0.003},
        "schedule": {"warmup_iters": 2},
        "train": {"epochs": 2, "batch_size": 4, "out_dir": str(out_dir), "seed": 0, **train},
    }


def requires_shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent (set PIXELSEG_DATA to the folder holding {name}/)")
    return path
