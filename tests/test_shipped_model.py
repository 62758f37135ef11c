"""The CamVid model that ships with the package: loadable by name, small, and sensible on real street scenes."""

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

    # sequence 0006R0, which the shipped model never saw (its default evaluation split)
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
