"""Files that cannot run code, and images that cannot exhaust memory."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import pixelseg
from pixelseg.data import open_dataset
from pixelseg.engine.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from pixelseg.errors import DataError, UnsafeFileError
from pixelseg.io import PILLOW_MAX_PIXELS, decode_image, max_image_pixels, read_image


class RunsCode:
    """An object whose unpickling calls a function: what a malicious .pt file holds."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickle_that_would_run_code_is_refused_everywhere(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "best.pt"
    torch.save({"model": RunsCode(marker), "model_config": {"name": "unet", "num_classes": 2}, "optimizer": {},
                "epoch": 1, "config": {}}, evil)
    with pytest.raises(UnsafeFileError, match=r"best.pt: refused to load: .*could run code.*posix.mkdir"):
        pixelseg.load(evil)
    with pytest.raises(UnsafeFileError, match="best.pt: refused to load"):
        load_checkpoint(evil)
    assert not marker.exists()
    result = subprocess.run([sys.executable, "-m", "pixelseg", "eval", str(evil)], capture_output=True, text=True)
    assert result.returncode == 2 and "refused to load" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and not marker.exists()


def test_checkpoints_hold_only_tensors_and_plain_data(tmp_path):
    random.random(), np.random.rand(), torch.rand(1)
    state = {"model": {"w": torch.ones(2)}, "optimizer": {}, "epoch": 3, "config": {"a": [1, 2]}, "rng": rng_state()}
    save_checkpoint(tmp_path / "last.pt", state)
    torch.load(tmp_path / "last.pt", weights_only=True)  # PyTorch's safe loader alone takes it
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    restore_rng_state(load_checkpoint(tmp_path / "last.pt")["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_checkpoints_from_before_the_safe_format_still_load(tmp_path):
    """Earlier checkpoints kept numpy's RNG state as a tuple with an array: that array is allowed, nothing else."""
    old_state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    torch.save({"model": {}, "optimizer": {}, "epoch": 1, "config": {},
                "rng": {"python": old_state[0], "numpy": old_state[1], "torch": old_state[2]}}, tmp_path / "old.pt")
    expected = np.random.rand()
    restore_rng_state(load_checkpoint(tmp_path / "old.pt")["rng"])
    assert np.random.rand() == expected


def test_pixelsegs_image_limit_leaves_pillows_setting_alone(tmp_path, monkeypatch):
    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_PIXELS == max_image_pixels()
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(tmp_path / "wide.png")
    monkeypatch.setenv("PIXELSEG_MAX_IMAGE_PIXELS", "2999")
    with pytest.raises(DataError, match=r"wide.png: refused, 60x50 pixels is more than the limit of 2,999"):
        read_image(tmp_path / "wide.png")
    monkeypatch.setenv("PIXELSEG_MAX_IMAGE_PIXELS", "3000")
    assert read_image(tmp_path / "wide.png").shape == (50, 60, 3)
    monkeypatch.setenv("PIXELSEG_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(DataError, match="PIXELSEG_MAX_IMAGE_PIXELS='lots': expected a whole number"):
        read_image(tmp_path / "wide.png")


def test_labelme_embedded_images_go_through_the_same_limit(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(buffer, format="PNG")
    (tmp_path / "labels.txt").write_text("_background_\ncar\n")
    (tmp_path / "a.json").write_text(json.dumps({"imageHeight": 20, "imageWidth": 30, "imagePath": None,
                                                 "imageData": base64.b64encode(buffer.getvalue()).decode(),
                                                 "shapes": []}))
    dataset = open_dataset("labelme", tmp_path, None)
    assert dataset.read_image(0).shape == (20, 30, 3)
    monkeypatch.setenv("PIXELSEG_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(DataError, match=r"a.json \(embedded imageData\): refused, 30x20 pixels"):
        dataset.read_image(0)


def test_undecodable_uploads_say_so_without_object_addresses():
    for data in (b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40):
        with pytest.raises(DataError) as caught:
            decode_image(data, "photo.png")
        message = str(caught.value)
        assert message.startswith("photo.png: not a readable image") and "0x" not in message
        assert "BytesIO" not in message and "object at" not in message
