"""Inputs of other than three channels end to end: grayscale (1) and RGB + an extra band (4)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import pixelseg
from pixelseg.data import make_shapes_dataset, open_dataset
from pixelseg.engine.config import config_from_dict
from pixelseg.engine.predict import predict_files
from pixelseg.engine.trainer import train
from pixelseg.errors import ConfigError, DataError
from pixelseg.io import read_image, write_image
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def grey_root(tmp_path_factory):
    root = make_shapes_dataset(tmp_path_factory.mktemp("grey"), num_train=12, num_val=4, height=48, width=64)
    for path in (root / "images").rglob("*.png"):
        Image.open(path).convert("L").save(path)
    return root


@pytest.fixture(scope="module")
def band_root(tmp_path_factory):
    """RGB images plus a 'nir' folder: a grey band per image (here: bright where the shapes are)."""
    root = make_shapes_dataset(tmp_path_factory.mktemp("bands"), num_train=12, num_val=4, height=48, width=64)
    for mask in (root / "masks").rglob("*.png"):
        band = np.asarray(Image.open(mask)).astype(np.uint8) * 60
        write_image(root / "nir" / mask.parent.name / mask.name, band)
    return root


def test_grayscale_images_train_evaluate_and_predict_as_one_channel(grey_root, tmp_path):
    dataset = open_dataset("folder", grey_root, "train", channels=1)
    image, _ = dataset.read(0)
    assert image.shape == (48, 64, 1) and dataset.channels == 1
    config = tiny_config(grey_root, tmp_path / "run", epochs=1)
    config["data"]["options"] = {"channels": 1}
    config["model"]["in_channels"] = 1
    train(config_from_dict(config), progress=False)
    model = pixelseg.load(tmp_path / "run" / "model")
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert len(model.meta["mean"]) == 1 and first_conv.in_channels == 1
    summary = predict_files(model, [grey_root / "images" / "val"], tmp_path / "out", progress=False)
    assert not summary.failed and (tmp_path / "out" / "val_0000_overlay.png").is_file()
    assert model.predict(read_image(grey_root / "images" / "val" / "val_0000.png", 1)).labels.shape == (48, 64)


def test_an_extra_band_folder_makes_four_channel_inputs(band_root, tmp_path):
    dataset = open_dataset("folder", band_root, "train", extra_channels=["nir"])
    image, mask = dataset.read(0)
    assert image.shape == (48, 64, 4) and dataset.channels == 4
    assert np.array_equal(image[..., 3], mask.astype(np.uint8) * 60)
    config = tiny_config(band_root, tmp_path / "run", epochs=1)
    config["data"]["options"] = {"extra_channels": ["nir"]}
    config["model"]["in_channels"] = 4
    train(config_from_dict(config), progress=False)
    model = pixelseg.load(tmp_path / "run" / "model")
    assert len(model.meta["mean"]) == 4
    assert model.predict(image).labels.shape == (48, 64)
    rgba = tmp_path / "rgba.png"
    write_image(rgba, image)  # the same four bands as one RGBA file
    summary = predict_files(model, [rgba], tmp_path / "out", progress=False)
    assert not summary.failed and (tmp_path / "out" / "rgba_labels.png").is_file()


def test_channel_mismatches_are_refused_with_the_fix(band_root, tmp_path):
    config = tiny_config(band_root, tmp_path / "run", epochs=1)
    config["data"]["options"] = {"extra_channels": ["nir"]}
    with pytest.raises(ConfigError, match="model.in_channels is 3 but the dataset's images have 4 channels"):
        train(config_from_dict(config), progress=False)
    broken = tmp_path / "broken"
    shutil.copytree(band_root, broken)
    (broken / "nir" / "train" / "train_0000.png").unlink()
    dataset = open_dataset("folder", broken, "train", extra_channels=["nir"])
    with pytest.raises(DataError, match=r"train_0000.png: no matching band in .*nir/train/"):
        dataset.read(0)
