"""Images too large to decode are refused by name and the rest of a batch goes on; large ones are tiled."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import torch
from fastapi.testclient import TestClient

from pixelseg import inference
from pixelseg.apps.server import ServerSettings, create_app
from pixelseg.io import write_image
from pixelseg.models import create, save_model
from tests.test_cli import pixelseg


def huge_png(path, width: int = 20_000, height: int = 20_000) -> bytes:
    """A grayscale PNG whose header says 20000 x 20000 (400 megapixels), as a few hundred bytes of rows of zeros
    would compress to: the decoder must refuse it from the header, before allocating its pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"\x00" * (width + 1) * 8)  # the first rows only: enough to look like an image
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    path.write_bytes(data)
    return data


def tiny_model(folder):
    model = create("enet", num_classes=2).eval()
    model.meta["classes"] = {"names": ["background", "thing"], "palette": [[0, 0, 0], [255, 0, 0]]}
    return save_model(model, folder)


def test_predict_a_folder_with_a_huge_image_writes_the_others(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    write_image(images / "small.png", np.full((40, 56, 3), 90, np.uint8))
    huge_png(images / "huge.png")
    result = pixelseg("predict", images, "--model", tiny_model(tmp_path / "model"), "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "huge.png: refused, 400,000,000 pixels is more than the limit" in result.stderr
    assert (tmp_path / "out" / "small_labels.png").is_file() and not (tmp_path / "out" / "huge_labels.png").exists()


def test_cutout_of_a_folder_with_a_huge_image_writes_the_others(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    write_image(images / "small.png", np.full((40, 56, 3), 90, np.uint8))
    huge_png(images / "huge.png")
    result = pixelseg("cutout", images, "--box", "5,5,40,30", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "huge.png: refused, 400,000,000 pixels" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "out" / "small_cutout.png").is_file()


def test_eval_on_a_dataset_with_a_huge_image_is_refused_naming_it(tmp_path):
    root = tmp_path / "data"
    for stem in ("a", "b"):
        write_image(root / "images" / "val" / f"{stem}.png", np.full((40, 56, 3), 90, np.uint8))
        write_image(root / "masks" / "val" / f"{stem}.png", np.zeros((40, 56), np.uint8))
    huge_png(root / "images" / "val" / "b.png")
    (root / "classes.txt").write_text("background\nthing\n")
    result = pixelseg("eval", tiny_model(tmp_path / "model"), "--data", root, "--split", "val", "--out", tmp_path / "e")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "b.png: refused, 400,000,000 pixels is more than the limit" in result.stderr


def test_serve_refuses_a_huge_upload_by_its_header(tmp_path):
    client = TestClient(create_app(ServerSettings(models_dir=tmp_path)))
    data = huge_png(tmp_path / "huge.png")
    response = client.post("/api/segment", files={"file": ("huge.png", data, "image/png")}, data={"method": "otsu"})
    assert response.status_code == 400
    assert "huge.png: refused, 400,000,000 pixels is more than the limit" in response.json()["detail"]


def test_an_image_too_large_for_one_forward_pass_goes_through_tiles(monkeypatch):
    model = create("enet", num_classes=2).eval()
    seen = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda images: (seen.append(tuple(images.shape[-2:])), forward(images))[1])
    monkeypatch.setattr(inference, "AUTO_TILE_PIXELS", 64 * 64)
    monkeypatch.setattr(inference, "AUTO_TILE", (48, 48))
    image = np.random.default_rng(0).integers(0, 255, (100, 130, 3), dtype=np.uint8)
    tiled = inference.predict_image(model, image)
    assert tiled.labels.shape == (100, 130) and len(seen) > 4 and max(seen) <= (48, 48)
    seen.clear()
    whole = inference.predict_image(model, image[:60, :60])  # small enough for one pass
    assert seen == [(60, 60)] and whole.labels.shape == (60, 60)


def test_class_maps_of_large_images_come_in_strips_equal_to_the_sliding_window(monkeypatch):
    """predict_in_strips holds one row of tiles' logits, not the C x H x W volume, and gives the sliding window's
    class map (same tiles, same weights); at another scale the class map is resized to the image."""
    torch.manual_seed(0)
    model = create("unet", encoder="resnet18", num_classes=5, pretrained=False).eval()
    with torch.no_grad():  # a random network answers with its biases; louder weights make the map follow the image
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.mul_(3)
    image = np.random.default_rng(1).integers(0, 255, (90, 140, 3), dtype=np.uint8)
    image[:, 70:] //= 3  # two halves, so that the class map is not one class
    volume = inference.predict_image(model, image, tile=(32, 48))
    calls = []
    strips = inference.predict_in_strips
    monkeypatch.setattr(inference, "predict_in_strips", lambda *a, **k: (calls.append(1), strips(*a, **k))[1])
    streamed = inference.predict_image(model, image, tile=(32, 48), probabilities=False)
    assert calls and streamed.probabilities is None and volume.probabilities is not None
    assert len(np.unique(volume.labels)) > 1
    assert (streamed.labels == volume.labels).mean() > 0.999
    half = inference.predict_image(model, image, scale=0.5, tile=(32, 48), probabilities=False)
    reference = inference.predict_image(model, image, scale=0.5, tile=(32, 48))
    assert half.labels.shape == (90, 140) and (half.labels == reference.labels).mean() > 0.9
    assert inference.predict_image(model, image, tile=(32, 48), flip=True, probabilities=False).probabilities \
        is not None  # test-time augmentation needs the volume: the ordinary path
