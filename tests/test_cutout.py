"""One-click cutout: GrabCut boxes, model classes, both, refined alpha, backgrounds, batch hygiene."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pixelseg.apps.cutout import (
    CutoutSettings,
    boundary_band,
    composite,
    cutout_files,
    cutout_image,
    default_model,
    default_refine,
    parse_colour,
    refine_alpha,
    refined_alpha,
)
from pixelseg.errors import ConfigError, DataError
from pixelseg.models import create
from tests.test_cli import pixelseg


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright ellipse on a dark textured background; the ellipse is the truth."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(60, 12, (120, 160, 3)), 0, 255).astype(np.uint8)
    rows, columns = np.mgrid[0:120, 0:160]
    truth = ((rows - 60) / 35) ** 2 + ((columns - 80) / 45) ** 2 <= 1
    image[truth] = np.clip(rng.normal(200, 12, (int(truth.sum()), 3)), 0, 255).astype(np.uint8)
    return image, truth


def bright_model():
    model = create("enet", num_classes=2).eval()
    model.meta["classes"] = {"names": ["background", "thing"], "palette": [[0, 0, 0], [255, 0, 0]]}
    model.meta["mean"], model.meta["std"] = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]

    def forward(images):  # logits from brightness: no training needed
        brightness = images.mean(1, keepdim=True)
        return torch.cat([0.5 - brightness, brightness - 0.5], 1) * 20

    model.forward = forward
    return model


def test_box_cutout_is_transparent_outside_the_object():
    image, truth = scene()
    result, alpha = cutout_image(image, CutoutSettings(box=(25, 15, 135, 105)))
    assert result.shape == (120, 160, 4)
    assert ((alpha > 0.5) == truth).mean() > 0.97
    assert (result[..., 3][~truth] == 0).mean() > 0.97 and (result[..., 3][truth] == 255).mean() > 0.97


def test_model_classes_and_model_plus_box():
    image, truth = scene()
    model = bright_model()
    _, alpha = cutout_image(image, CutoutSettings(model=model, classes=["thing"]))
    assert ((alpha > 0.5) == truth).mean() > 0.97
    # A second bright blob outside the box: the model alone keeps it, model + box drops it.
    image[5:15, 5:15] = 230
    _, alone = cutout_image(image, CutoutSettings(model=model, classes=["Thing"]))
    _, boxed = cutout_image(image, CutoutSettings(model=model, classes=["thing"], box=(25, 15, 135, 105)))
    assert alone[5:15, 5:15].mean() > 0.9 and boxed[5:15, 5:15].max() == 0
    assert ((boxed > 0.5) == truth).mean() > 0.97
    with pytest.raises(ConfigError, match="not one of the model's classes"):
        cutout_image(image, CutoutSettings(model=model, classes=["car"]))


def test_without_classes_everything_but_background_is_foreground():
    image, truth = scene()
    model = bright_model()
    _, alpha = cutout_image(image, CutoutSettings(model=model))
    assert ((alpha > 0.5) == truth).mean() > 0.97
    model.meta["classes"] = {"names": ["sky", "thing"], "palette": [[0, 0, 0], [255, 0, 0]]}
    with pytest.raises(ConfigError, match="--classes.*no 'background' class"):
        cutout_image(image, CutoutSettings(model=model))


def test_nothing_said_means_the_portrait_model_with_soft_edges():
    assert default_model(None, None, None) == "portrait" and default_refine(None, None, None)
    assert default_model((1, 2, 3, 4), None, None) is None and not default_refine(None, (1, 2, 3, 4), None)
    assert default_model(None, "strokes.png", None) is None and not default_refine(None, None, "strokes.png")
    assert default_model(None, None, "camvid") == "camvid" and not default_refine(False, None, None)


def test_refined_alpha_is_soft_only_near_the_boundary():
    image, truth = scene()
    alpha = refine_alpha(image, truth.astype(np.float32), radius=4)
    soft = (alpha > 0.02) & (alpha < 0.98)
    assert soft.any()
    distance_inside = np.asarray(truth, np.uint8)
    import cv2

    far = cv2.erode(distance_inside, np.ones((11, 11), np.uint8)).astype(bool)
    assert (alpha[far] == 1).all() and not soft[far].any()


def test_soft_edges_take_the_foregrounds_colours_not_the_old_backgrounds():
    """image = alpha F + (1 - alpha) B with a known soft alpha over a green background: the colours the cutout keeps
    under the soft alpha are nearer F than the image's own, and exactly the image where alpha is 1."""
    truth = scene()[1]
    foreground = np.clip(np.random.default_rng(0).normal(200, 12, (*truth.shape, 3)), 0, 255)  # F: the object's
    green = np.zeros_like(foreground)
    green[..., 1] = 255
    alpha = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 2.0)
    image = np.round(alpha[..., None] * foreground + (1 - alpha[..., None]) * green).astype(np.uint8)
    soft = (alpha > 0.05) & (alpha < 0.95)
    kept = composite(image, alpha, None)[..., :3].astype(float)

    def spill(colours):  # what shows of the colours' error once composited: alpha |colours - F|
        return float((alpha[..., None] * np.abs(colours - foreground))[soft].mean())

    assert spill(kept) < 0.6 * spill(image.astype(float))
    solid = alpha >= 1
    assert solid.any() and (kept[solid] == image[solid]).all()


def test_backgrounds(tmp_path):
    image, truth = scene()
    alpha = truth.astype(np.float32)
    assert parse_colour("#ff8000") == (255, 128, 0) and parse_colour("0,255,0") == (0, 255, 0)
    assert parse_colour("white") == (255, 255, 255) and parse_colour("nonsense") is None
    white = composite(image, alpha, "white")
    assert white.shape == (120, 160, 3) and (white[~truth] == 255).all() and (white[truth] == image[truth]).all()
    assert composite(image, alpha, "blur")[~truth].std() < image[~truth].std()
    Image.fromarray(np.full((10, 10, 3), 7, np.uint8)).save(tmp_path / "behind.png")
    assert (composite(image, alpha, str(tmp_path / "behind.png"))[~truth] == 7).all()
    with pytest.raises(ConfigError, match="not a colour"):
        composite(image, alpha, "no-such-file.png")


def test_batch_skips_bad_files_and_never_overwrites_inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for number in range(2):
        Image.fromarray(scene(number)[0]).save(folder / f"photo{number}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(small / "tiny.png")
    settings = CutoutSettings(box=(25, 15, 135, 105))
    summary = cutout_files([folder, small / "tiny.png"], tmp_path / "out", settings, save_mask=True, progress=False)
    assert sorted(p.name for p in summary.written) == ["photo0_cutout.png", "photo0_mask.png", "photo1_cutout.png",
                                                       "photo1_mask.png"]
    assert len(summary.failed) == 2 and any("broken.png" in f for f in summary.failed)
    assert any("tiny.png" in f and "empty" in f for f in summary.failed)  # the box lies outside a 10x10 image
    assert Image.open(tmp_path / "out" / "photo0_cutout.png").mode == "RGBA"
    # An input named like another input's output: refused before anything is written.
    Image.fromarray(scene()[0]).save(folder / "photo0_cutout.png")
    before = (folder / "photo0_cutout.png").read_bytes()
    with pytest.raises(DataError, match="overwrite an input"):
        cutout_files([folder / "photo0.png", folder / "photo0_cutout.png"], folder, settings, progress=False)
    assert (folder / "photo0_cutout.png").read_bytes() == before


def test_cutout_command(tmp_path):
    image, _ = scene()
    Image.fromarray(image).save(tmp_path / "photo.png")
    result = pixelseg("cutout", tmp_path / "photo.png", "--box", "25,15,135,105", "--refine", "--background",
                      "#00ff00", "--mask", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "1 image(s) cut out" in result.stdout and "foreground" in result.stdout
    assert Image.open(tmp_path / "out" / "photo_cutout.png").mode == "RGB"
    nonsense = pixelseg("cutout", tmp_path / "photo.png", "--model", "camvid", "--out", tmp_path / "o2")
    assert nonsense.returncode == 2 and "--classes" in nonsense.stderr and "Traceback" not in nonsense.stderr


def test_scribbles_alone_and_their_size_is_checked(tmp_path):
    image, truth = scene()
    scribbles = np.full(truth.shape, 128, np.uint8)
    scribbles[55:65, 70:90] = 255  # a stroke on the object
    scribbles[:4] = 0  # a stroke on the background
    Image.fromarray(scribbles).save(tmp_path / "strokes.png")
    _, alpha = cutout_image(image, CutoutSettings(scribbles=tmp_path / "strokes.png"))
    assert ((alpha > 0.5) == truth).mean() > 0.95
    Image.fromarray(scribbles[:60]).save(tmp_path / "small.png")
    with pytest.raises(ConfigError, match="scribbles are 160x60"):
        cutout_image(image, CutoutSettings(scribbles=tmp_path / "small.png"))


def test_a_long_side_model_sees_every_photo_at_its_training_size():
    from pixelseg.inference import inference_scale, predict_image

    model = bright_model()
    model.meta["inference_long_side"] = 80
    assert inference_scale(model, 120, 160) == 0.5 and inference_scale(model, 1200, 1600) == 0.05
    assert inference_scale(model, 120, 160, scale=1.0) == 1.0  # an explicit scale wins
    seen = []
    forward = model.forward
    model.forward = lambda images: seen.append(tuple(images.shape[2:])) or forward(images)
    image, truth = scene()
    big = np.repeat(np.repeat(image, 4, 0), 4, 1)  # the same scene at 4x: the network input stays the same size
    assert (predict_image(model, big).labels.astype(bool) == np.repeat(np.repeat(truth, 4, 0), 4, 1)).mean() > 0.95
    predict_image(model, image)
    assert seen[0][1] == seen[1][1] == 80


def test_closed_form_matting_recovers_a_soft_edge():
    """An image composited from a known soft alpha (a ramp across an ellipse's border): closed-form matting on the
    band around the hard mask comes much closer to that alpha than the mask itself; outside the band it is hard."""
    pytest.importorskip("pymatting")
    rows, columns = np.mgrid[0:120, 0:160]
    radius = np.sqrt(((rows - 60) / 35) ** 2 + ((columns - 80) / 45) ** 2)
    truth = np.clip((1.15 - radius) / 0.3, 0, 1)  # 1 inside, 0 outside, a ramp of about 10 pixels between
    rng = np.random.default_rng(0)
    foreground, background = np.array([230.0, 190.0, 60.0]), np.array([30.0, 60.0, 140.0])
    image = truth[..., None] * foreground + (1 - truth[..., None]) * background + rng.normal(0, 2, (120, 160, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    hard = (truth > 0.5).astype(np.float32)
    alpha = refined_alpha(image, hard, method="matting", radius=8)
    band = boundary_band(hard, 8)[1]
    assert np.abs(alpha - truth)[band].mean() < 0.5 * np.abs(hard - truth)[band].mean()
    assert set(np.unique(alpha[~band])) <= {0.0, 1.0}
    with pytest.raises(ConfigError, match="not one of guided, matting"):
        refined_alpha(image, hard, method="poisson")
