"""The models that ship with the package (camvid, portrait): loadable by name, small, and sensible on real
images; the portrait model is what a cutout with no box uses."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pixelseg
from pixelseg.data import open_dataset
from pixelseg.data.classes import CAMVID
from pixelseg.loading import SHIPPED_DIR
from pixelseg.metrics import ConfusionMatrix
from tests.conftest import requires_shared
from tests.test_cli import pixelseg as run_cli

WEIGHTS = SHIPPED_DIR / "camvid" / "model.safetensors"


def test_shipped_weights_are_small_and_load_by_name():
    assert WEIGHTS.is_file(), "pixelseg/weights/camvid is missing: run scripts/train_default.sh"
    assert WEIGHTS.stat().st_size <= 25_000_000
    model = pixelseg.load("camvid")
    assert model.classes.names == CAMVID.names and not model.training


@pytest.mark.realdata
def test_shipped_model_segments_real_street_scenes():
    import torch

    # sequence 0006R0 (its default evaluation split; trained on by the shipped model: a check that it works, not an
    # accuracy estimate)
    dataset = open_dataset("camvid", requires_shared("camvid"), "val_0006R0", splits_dir="camvid_sequences")
    model = pixelseg.load("camvid")
    assert model.meta["data"]["val_split"] == "val_0006R0" and model.meta["mean"] == [0.5, 0.5, 0.5]
    confusion = ConfusionMatrix(11)
    for index in range(0, len(dataset), 25):  # 5 images spread over the split
        image, truth = dataset.read(index)
        prediction = model.predict(image)
        confusion.update(torch.from_numpy(prediction.labels.astype(np.int64)), torch.from_numpy(truth))
    metrics = confusion.compute()
    assert metrics["pixel_accuracy"] > 0.8 and metrics["miou"] > 0.4, metrics


def test_predict_without_a_checkpoint_uses_the_shipped_model(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(tmp_path / "street.png")
    result = run_cli("predict", "street.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "camvid (shipped)" in result.stdout
    labels = np.asarray(Image.open(tmp_path / "predictions" / "street_labels.png"))
    assert labels.shape == (90, 120) and labels.max() < 11


PORTRAIT = SHIPPED_DIR / "portrait" / "model.safetensors"


def test_shipped_portrait_model_is_small_and_loads_by_name():
    assert PORTRAIT.is_file(), "pixelseg/weights/portrait is missing: train configs/portrait_lite0.yaml"
    assert PORTRAIT.stat().st_size <= 10 * 2**20
    model = pixelseg.load("portrait")
    assert model.classes.names == ["background", "person"] and model.meta["inference_long_side"] == 256


@pytest.mark.parametrize("name", ["camvid", "portrait"])
def test_shipped_model_meta_names_no_path_of_the_machine_it_was_trained_on(name):
    """The data root is a dataset name and the encoder weights name their package: a shipped file carries no
    absolute path (it would point nowhere on a user's machine and say where ours live)."""
    import json

    text = json.dumps(pixelseg.load(name).meta)
    assert not any(marker in text for marker in ('"/', " (/", "/site-packages/", "/home/", "/root/")), text


def portrait_photo(index: int = 0):
    dataset = open_dataset("folder", requires_shared("portrait"), "val", splits_dir="portrait_last_digit_0")
    return dataset.read(index)


@pytest.mark.realdata
def test_one_click_cutout_cuts_the_person_out_of_a_real_portrait(tmp_path):
    image, truth = portrait_photo(3)  # a validation portrait: never trained on
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=95)
    result = run_cli("cutout", "photo.jpg", "--mask", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rgba = np.asarray(Image.open(tmp_path / "cutouts" / "photo_cutout.png"))
    assert rgba.shape == (*truth.shape, 4)
    alpha = rgba[..., 3].astype(np.float32) / 255
    labelled = truth != 255
    assert ((alpha > 0.5) == (truth == 1))[labelled].mean() > 0.93
    soft = (alpha > 0.02) & (alpha < 0.98)
    assert 0 < soft.mean() < 0.1  # soft edges along the boundary only


@pytest.mark.realdata
def test_the_server_cuts_out_with_the_portrait_model_by_default():
    import io

    from fastapi.testclient import TestClient

    from pixelseg.apps.server import create_app

    image, truth = portrait_photo(7)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    with TestClient(create_app()) as client:
        response = client.post("/api/cutout", files={"file": ("photo.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 200, response.text
    rgba = np.asarray(Image.open(io.BytesIO(response.content)))
    assert ((rgba[..., 3] > 127) == (truth == 1))[truth != 255].mean() > 0.93
