"""Weak labels (pixelseg.classical.weak_labels): boxes and scribbles from masks, pseudo-masks from boxes, bad boxes;
the weak-label training methods (pixelseg.engine.methods.weak): the CRF energy and the refresh with known answers,
tiny runs that stop and resume to the same weights."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pixelseg.classical.weak_labels import (
    box_pseudo_mask,
    boxes_from_mask,
    check_boxes,
    read_boxes,
    scribbles_from_mask,
)
from pixelseg.engine.config import config_from_dict
from pixelseg.engine.methods.weak import crf_energy, refreshed_targets
from pixelseg.errors import ConfigError, DataError
from tests.conftest import tiny_config


def scene():
    image = np.full((80, 100, 3), 40, np.uint8)
    mask = np.zeros((80, 100), np.uint8)
    image[20:60, 30:70] = (220, 60, 60)  # a red square, class 1
    mask[20:60, 30:70] = 1
    image[5:15, 80:95] = (60, 220, 60)  # a small green patch, class 2
    mask[5:15, 80:95] = 2
    mask[0, 0] = 255
    return image, mask


def test_boxes_and_scribbles_come_from_the_regions_of_the_mask():
    image, mask = scene()
    assert sorted(boxes_from_mask(mask)) == [(1, 30, 20, 70, 60), (2, 80, 5, 95, 15)]
    scribbles = scribbles_from_mask(mask)
    for c in (0, 1, 2):
        drawn = scribbles == c
        assert drawn.any() and np.all(mask[drawn] == c)  # strokes lie inside their class
    assert (scribbles == 255).mean() > 0.9  # sparse: most pixels unknown


def test_grabcut_pseudo_mask_recovers_the_objects_inside_their_boxes():
    image, mask = scene()
    target = box_pseudo_mask(image, boxes_from_mask(mask))
    labelled = target != 255
    assert (target[labelled] == mask[labelled]).mean() > 0.97
    assert labelled.mean() > 0.9
    whole = box_pseudo_mask(image, boxes_from_mask(mask), method="box")
    assert np.array_equal(whole == 1, mask == 1)


def test_a_box_as_large_as_the_image_keeps_its_centre_and_ignores_its_border():
    """GrabCut needs background pixels outside the box; a portrait filling the frame gives none (it crashed the
    whole `pixelseg data weak` run on the portrait dataset)."""
    image, _ = scene()
    target = box_pseudo_mask(image, [(1, 0, 0, 100, 80)])
    assert np.all(target[20:60, 25:75] == 1)  # the centre: half the width and height
    assert np.all(target[:20] == 255) and np.all(target[:, :25] == 255) and np.all(target[60:] == 255)


def test_target_quality_counts_precision_and_unlabelled_pixels():
    from pixelseg.classical.weak_labels import TargetQuality

    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    target = np.array([[0, 255, 1, 1], [255, 1, 255, 0]])  # one background pixel called 1; 255 where unknown
    quality = TargetQuality(2)
    quality.update(target, truth)
    summary = quality.summary(["background", "thing"])
    assert summary["labelled"] == pytest.approx(4 / 7)  # 7 labelled true pixels, 3 of them without a target
    assert summary["classes"]["background"] == {"precision": 1.0, "unlabelled": 0.5}
    assert summary["classes"]["thing"]["precision"] == pytest.approx(2 / 3)
    assert summary["classes"]["thing"]["unlabelled"] == pytest.approx(1 / 3)


def test_boxes_outside_the_image_or_of_unknown_classes_are_errors(tmp_path):
    with pytest.raises(DataError, match="a.png: box \\[90, 0, 120, 10\\] is outside the 100x80 image"):
        check_boxes([(1, 90, 0, 120, 10)], 80, 100, 3, "a.png")
    with pytest.raises(DataError, match="box class 5 is outside the 3 classes"):
        check_boxes([(5, 0, 0, 10, 10)], 80, 100, 3, "a.png")
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({"img1": [{"class": "car", "box": [1, 2, 30, 40]}]}))
    assert read_boxes(path, ["background", "car"]) == {"img1": [(1, 1, 2, 30, 40)]}
    with pytest.raises(DataError, match="box class 'bus' is not one of background, car"):
        path.write_text(json.dumps({"img1": [{"class": "bus", "box": [1, 2, 30, 40]}]}))
        read_boxes(path, ["background", "car"])
    labelme = tmp_path / "img2.json"
    labelme.write_text(json.dumps({"shapes": [{"label": "car", "shape_type": "rectangle",
                                               "points": [[30, 40], [1, 2]]}]}))
    assert read_boxes(labelme, ["background", "car"]) == {"img2": [(1, 1, 2, 30, 40)]}


def test_data_weak_writes_a_folder_dataset_that_trains(shapes_root, tmp_path):
    from pixelseg.data import open_dataset
    from tests.test_cli import pixelseg

    made = pixelseg("data", "weak", shapes_root, "--kind", "boxes", "--split", "val", "--out", tmp_path / "boxes")
    assert made.returncode == 0, made.stderr
    weak = open_dataset("folder", tmp_path / "boxes", "val")
    full = open_dataset("folder", shapes_root, "val")
    assert len(weak) == len(full) == 4
    for index in range(4):
        target, truth = weak.read_mask(index), full.read_mask(index)
        labelled = target != 255
        assert labelled.mean() > 0.5 and (target[labelled] == truth[labelled]).mean() > 0.9
    assert json.loads((tmp_path / "boxes" / "boxes_val.json").read_text())
    quality = json.loads((tmp_path / "boxes" / "quality_val.json").read_text())  # against the masks, also printed
    assert 0.5 < quality["labelled"] < 1 and all(row["precision"] > 0.8 for row in quality["classes"].values())
    assert "precision of its targets" in made.stdout and "left unlabelled" in made.stdout
    again = pixelseg("data", "weak", shapes_root, "--kind", "scribbles", "--split", "val", "--out", tmp_path / "boxes")
    assert again.returncode == 2 and "already there" in again.stderr  # nothing the user had is overwritten
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "few.txt").write_text("train_0001\ntrain_0003\n")  # a split list: the rest stays out
    listed = pixelseg("data", "weak", shapes_root, "--kind", "scribbles", "--split", "few", "--splits-dir", lists,
                      "--out", tmp_path / "few")
    assert listed.returncode == 0, listed.stderr
    assert sorted(p.stem for p in (tmp_path / "few" / "masks" / "few").iterdir()) == ["train_0001", "train_0003"]
    scored = pixelseg("eval", "--method", "otsu", "--data", shapes_root, "--split", "few", "--splits-dir", lists,
                      "--out", tmp_path / "few_eval", "--examples", "0")
    assert scored.returncode == 0 and json.loads((tmp_path / "few_eval" / "metrics.json").read_text())["images"] == 2


def brute_force_crf_energy(probabilities, image, sxy, srgb, radius):
    """Tang et al.'s relaxed Potts energy, pixel pair by pixel pair, over the same window (no downsampling)."""
    _, _, height, width = probabilities.shape
    total = 0.0
    for y in range(height):
        for x in range(width):
            for v in range(max(0, y - radius), min(height, y + radius + 1)):
                for u in range(max(0, x - radius), min(width, x + radius + 1)):
                    if (v, u) == (y, x):
                        continue
                    colour = float(((image[0, :, y, x] - image[0, :, v, u]) ** 2).sum())
                    w = math.exp(-((v - y) ** 2 + (u - x) ** 2) / (2 * sxy**2) - colour / (2 * srgb**2))
                    total += w * (1 - float((probabilities[0, :, y, x] * probabilities[0, :, v, u]).sum()))
    return total / (height * width)


def test_crf_energy_is_the_pairwise_sum_of_the_paper():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.randn(1, 3, 5, 6, generator=generator).softmax(dim=1)
    image = torch.rand(1, 3, 5, 6, generator=generator) * 60
    expected = brute_force_crf_energy(probabilities, image, sxy=2.0, srgb=30.0, radius=2)
    got = crf_energy(probabilities, image, sxy=2.0, srgb=30.0, radius=2, downsample=1)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_crf_energy_prefers_label_edges_on_colour_edges():
    image = torch.zeros(1, 3, 16, 16)
    image[..., 8:] = 200.0  # a colour edge between columns 7 and 8
    def split_at(column):
        labels = torch.zeros(16, 16, dtype=torch.long)
        labels[:, column:] = 1
        return torch.nn.functional.one_hot(labels, 2).permute(2, 0, 1)[None].float()

    constant = crf_energy(split_at(16), image, downsample=1)
    on_edge, off_edge = crf_energy(split_at(8), image, downsample=1), crf_energy(split_at(4), image, downsample=1)
    assert constant.item() == 0.0 and on_edge.item() < 1e-6 < off_edge.item()


def test_refreshed_targets_fill_only_uncertain_pixels_with_allowed_confident_classes():
    masks = torch.tensor([[[2, 255, 255, 255, 0]]])  # certain: class 2 and background; three uncertain pixels
    probabilities = torch.tensor([[0.0, 0.05, 0.9, 0.1, 0.9],  # background
                                  [0.0, 0.9, 0.0, 0.0, 0.0],  # class 1: confident, but no certain pixel holds it
                                  [1.0, 0.05, 0.1, 0.9, 0.1]]).view(1, 3, 1, 5)
    refreshed = refreshed_targets(masks, probabilities, threshold=0.8, background=0, ignore_index=255)
    assert refreshed.tolist() == [[[2, 255, 0, 2, 0]]]


@pytest.mark.parametrize("method", [{"name": "scribble_crf", "weight": 0.5},
                                    {"name": "box_refresh", "warmup_epochs": 1, "round_epochs": 1,
                                     "threshold": 0.6}])
def test_weak_label_methods_train_and_resume_to_the_same_weights(method, shapes_root, tmp_path, monkeypatch):
    from tests.test_cli import pixelseg
    from tests.test_methods import straight_and_resumed_runs

    kind = "scribbles" if method["name"] == "scribble_crf" else "boxes"
    for split in ("train", "val"):
        made = pixelseg("data", "weak", shapes_root, "--kind", kind, "--split", split, "--out", tmp_path / "weak")
        assert made.returncode == 0, made.stderr

    def config(out):
        values = tiny_config(tmp_path / "weak", out, epochs=2)
        values["method"] = method
        return config_from_dict(values)

    a, b = straight_and_resumed_runs(config, tmp_path, monkeypatch)
    if method["name"] == "box_refresh":
        assert a["method"]["round"] == 1 and a["method"]["steps"] == b["method"]["steps"] == 8  # refreshed in epoch 2


def test_weak_method_options_are_checked():
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        config_from_dict({"model": {"name": "unet"}, "method": {"name": "box_refresh", "treshold": 0.9}})
