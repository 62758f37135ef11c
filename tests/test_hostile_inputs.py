"""Hostile and unusual inputs: every one handled or refused with a message naming the file."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pixelseg.data import open_dataset
from pixelseg.engine import train
from pixelseg.engine import trainer as trainer_module
from pixelseg.engine.config import config_from_dict
from pixelseg.engine.trainer import check_output_dir
from pixelseg.errors import ConfigError, DataError
from pixelseg.io import decode_image, read_image
from tests.conftest import tiny_config


@pytest.mark.parametrize("mode", ["CMYK", "L", "RGBA", "P", "I;16", "LA"])
def test_image_modes_become_rgb(tmp_path, mode):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray((rng.integers(0, 65535, (20, 30))).astype(np.uint16))
    elif mode == "P":
        image = rgb.convert("P")
    else:
        image = rgb.convert(mode)
    path = tmp_path / ("image.tif" if mode == "CMYK" else "image.png")
    image.save(path)
    array = read_image(path)
    assert array.shape == (20, 30, 3) and array.dtype == np.uint8
    if mode == "I;16":
        assert array.max() == 255  # scaled to 8 bits, not clipped


def test_exif_rotation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((20, 30, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").shape == (30, 20, 3)


def test_decompression_bombs_and_pixel_limits_are_refused(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses above twice the limit
    with pytest.raises(DataError, match="big.png: refused, 10,000 pixels is more than the limit"):
        read_image(tmp_path / "big.png")
    monkeypatch.undo()
    with pytest.raises(DataError, match="upload.png: refused, 100x100 pixels is more than the limit of 5,000"):
        decode_image((tmp_path / "big.png").read_bytes(), "upload.png", max_pixels=5000)


def test_empty_dataset_and_split_are_named(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "masks" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="split .train. of the folder layout holds no samples"):
        open_dataset("folder", tmp_path, "train", num_classes=2)


def test_an_unwritable_output_folder_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write there"):
        check_output_dir(blocker / "run")


def test_too_little_free_disk_space_is_refused_before_training(shapes_root, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module.shutil, "disk_usage", lambda path: SimpleNamespace(free=10**6))
    with pytest.raises(ConfigError, match=r"1 MiB free on its disk, but the run needs about \d+ MiB"):
        train(config_from_dict(tiny_config(shapes_root, tmp_path / "run")), progress=False)
    assert not (tmp_path / "run" / "last.pt").exists()
