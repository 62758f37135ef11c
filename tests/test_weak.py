"""Weak labels (pixelseg.classical.weak_labels): boxes and scribbles from masks, pseudo-masks from boxes, bad boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixelseg.classical.weak_labels import (
    box_pseudo_mask,
    boxes_from_mask,
    check_boxes,
    read_boxes,
    scribbles_from_mask,
)
from pixelseg.errors import DataError


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
    again = pixelseg("data", "weak", shapes_root, "--kind", "scribbles", "--split", "val", "--out", tmp_path / "boxes")
    assert again.returncode == 2 and "already there" in again.stderr  # nothing the user had is overwritten
