import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelseg.data import CAMVID, IGNORE_INDEX, VOC, detect_layout, open_dataset
from pixelseg.errors import ConfigError, DataError
from tests.conftest import requires_shared


def save(path: Path, array: np.ndarray, palette=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if palette is not None:
        image = image.convert("P")
        image.putpalette(np.asarray(palette, np.uint8).ravel().tolist())
    image.save(path)
    return path


def rgb(height=6, width=8, value=100):
    return np.full((height, width, 3), value, np.uint8)


def test_folder_layout_with_split_folders(shapes_root):
    train = open_dataset(None, shapes_root, "train")
    assert detect_layout(shapes_root) == "folder"
    assert len(train) == 16 and train.classes.names == ["background", "disc", "square", "triangle"]
    image, mask = train.read(0)
    assert image.shape == (48, 64, 3) and mask.shape == (48, 64)
    assert set(np.unique(mask)) <= {0, 1, 2, 3, IGNORE_INDEX}


def test_folder_layout_split_lists_and_value_map(tmp_path):
    for index in range(4):
        save(tmp_path / "images" / f"{index}.png", rgb())
        save(tmp_path / "masks" / f"{index}.png", np.where(np.eye(6, 8) > 0, 255, 0).astype(np.uint8))
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "val.txt").write_text("1\n3\n")
    dataset = open_dataset("folder", tmp_path, "val", classes=["cell", "membrane"], value_map={255: 0, 0: 1})
    assert [s.name for s in dataset.samples] == ["1", "3"]
    mask = dataset.read_mask(0)
    assert mask[0, 0] == 0 and mask[0, 1] == 1
    with pytest.raises(DataError, match="no split 'test'"):
        open_dataset("folder", tmp_path, "test", num_classes=2)


def test_folder_layout_rgb_colour_masks_through_palette(tmp_path):
    spec = {"names": ["bg", "road"], "palette": [[0, 0, 0], [128, 64, 128]], "void_colours": [[255, 255, 255]]}
    (tmp_path / "classes.json").write_text(json.dumps(spec))
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[0, 0] = (128, 64, 128)
    colour[1, 1] = (255, 255, 255)
    save(tmp_path / "images" / "a.png", rgb(4, 4))
    save(tmp_path / "masks" / "a.png", colour)
    mask = open_dataset("folder", tmp_path, None).read_mask(0)
    assert mask[0, 0] == 1 and mask[1, 1] == IGNORE_INDEX and mask[2, 2] == 0
    colour[3, 3] = (1, 2, 3)
    save(tmp_path / "masks" / "a.png", colour)
    with pytest.raises(DataError, match=r"a\.png: colours not in the palette: \(1, 2, 3\)"):
        open_dataset("folder", tmp_path, None).read_mask(0)


def test_camvid_layout_maps_void_to_ignore(tmp_path):
    save(tmp_path / "train" / "f001.png", rgb())
    label = np.full((6, 8), 3, np.uint8)
    label[0] = 11
    save(tmp_path / "trainannot" / "f001.png", label)
    dataset = open_dataset(None, tmp_path, "train")
    assert dataset.name == "camvid" and dataset.classes.names == CAMVID.names
    mask = dataset.read_mask(0)
    assert (mask[0] == IGNORE_INDEX).all() and (mask[1:] == 3).all()
    label[1, 1] = 12
    save(tmp_path / "trainannot" / "f001.png", label)
    with pytest.raises(DataError, match="label values outside the classes: 12"):
        dataset.read_mask(0)


def test_voc_layout_palette_pngs_and_border(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    (root / "JPEGImages").mkdir(parents=True)
    Image.fromarray(rgb()).save(root / "JPEGImages" / "2007_000001.jpg")
    label = np.zeros((6, 8), np.uint8)
    label[2:4, 2:4] = 15
    label[1, :] = 255
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(VOC.palette)] = VOC.palette
    save(root / "SegmentationClass" / "2007_000001.png", label, palette)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000001\n2007_000002\n")
    dataset = open_dataset(None, tmp_path, "train")
    assert dataset.name == "voc" and len(dataset) == 1
    assert any("missing pair" in p.message for p in dataset.problems)
    mask = dataset.read_mask(0)
    assert mask[2, 2] == 15 and (mask[1] == IGNORE_INDEX).all()


def test_cityscapes_label_ids_become_train_ids(tmp_path):
    city = "aachen"
    save(tmp_path / "leftImg8bit" / "val" / city / f"{city}_000000_000019_leftImg8bit.png", rgb())
    label = np.zeros((6, 8), np.uint8)  # 0 = unlabeled -> ignore
    label[0, 0], label[0, 1], label[0, 2] = 7, 26, 33  # road, car, bicycle
    save(tmp_path / "gtFine" / "val" / city / f"{city}_000000_000019_gtFine_labelIds.png", label)
    dataset = open_dataset(None, tmp_path, "val")
    mask = dataset.read_mask(0)
    assert dataset.classes.num_classes == 19
    assert mask[0, :3].tolist() == [0, 13, 18] and mask[1, 1] == IGNORE_INDEX


def test_ade20k_shifts_classes_and_ignores_zero(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    save(root / "images" / "validation" / "ADE_val_1.png", rgb())
    label = np.zeros((6, 8), np.uint8)
    label[0, 0], label[0, 1] = 1, 150
    save(root / "annotations" / "validation" / "ADE_val_1.png", label)
    dataset = open_dataset(None, tmp_path, "val")
    assert dataset.name == "ade20k" and dataset.classes.num_classes == 150
    mask = dataset.read_mask(0)
    assert mask[0, 0] == 0 and mask[0, 1] == 149 and mask[3, 3] == IGNORE_INDEX


def labelme_document(image_name=None, embedded=None):
    return {"imageHeight": 20, "imageWidth": 30, "imagePath": image_name, "imageData": embedded, "shapes": [
        {"label": "car", "shape_type": "polygon", "points": [[2, 2], [12, 2], [12, 12], [2, 12]]},
        {"label": "person", "shape_type": "rectangle", "points": [[8, 8], [20, 18]]},
        {"label": "__ignore__", "shape_type": "circle", "points": [[25, 5], [27, 5]]},
    ]}


def test_labelme_polygons_rasterised_in_order(tmp_path):
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ncar\nperson\n")
    save(tmp_path / "a.png", rgb(20, 30))
    (tmp_path / "a.json").write_text(json.dumps(labelme_document("a.png")))
    buffer = io.BytesIO()
    Image.fromarray(rgb(20, 30, 7)).save(buffer, format="PNG")
    (tmp_path / "b.json").write_text(json.dumps(labelme_document(None, base64.b64encode(buffer.getvalue()).decode())))
    dataset = open_dataset(None, tmp_path, None)
    assert dataset.name == "labelme" and dataset.classes.names == ["_background_", "car", "person"]
    image, mask = dataset.read(0)
    assert mask[5, 5] == 1 and mask[10, 10] == 2 and mask[15, 15] == 2 and mask[0, 0] == 0
    assert mask[5, 25] == IGNORE_INDEX
    embedded_image, _ = dataset.read(1)
    assert embedded_image.shape == (20, 30, 3) and embedded_image[0, 0, 0] == 7


def test_labelme_unknown_label_names_the_file_and_shape(tmp_path):
    document = labelme_document("a.png")
    document["shapes"][0]["label"] = "truck"
    (tmp_path / "a.json").write_text(json.dumps(document))
    dataset = open_dataset("labelme", tmp_path, None, classes=["_background_", "car", "person"])
    with pytest.raises(DataError, match=r"a\.json: shape 0 has label 'truck'"):
        dataset.read_mask(0)


def test_data_root_from_environment(tmp_path, monkeypatch):
    save(tmp_path / "camvid" / "val" / "x.png", rgb())
    save(tmp_path / "camvid" / "valannot" / "x.png", np.zeros((6, 8), np.uint8))
    monkeypatch.setenv("PIXELSEG_DATA", str(tmp_path))
    assert len(open_dataset("camvid", None, "val")) == 1
    assert len(open_dataset("camvid", "camvid", "val")) == 1


def test_unknown_layout_and_missing_root(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'camvid'"):
        open_dataset("camvdi", tmp_path, "train")
    with pytest.raises(DataError, match="does not exist"):
        open_dataset("folder", tmp_path / "nope", None)


def test_unreadable_image_names_the_file(tmp_path):
    save(tmp_path / "images" / "a.png", rgb())
    (tmp_path / "images" / "b.png").write_bytes(b"not a png at all")
    for name in ("a", "b"):
        save(tmp_path / "masks" / f"{name}.png", np.zeros((6, 8), np.uint8))
    dataset = open_dataset("folder", tmp_path, None, num_classes=2)
    with pytest.raises(DataError, match=r"b\.png: not a readable image"):
        dataset.read(1)


def test_real_camvid_val_reads_with_classes_and_void():
    root = requires_shared("camvid")
    dataset = open_dataset("camvid", root, "val")
    assert len(dataset) == 101
    image, mask = dataset.read(0)
    assert image.shape == (360, 480, 3) and mask.shape == (360, 480)
    assert set(np.unique(mask)) <= set(range(11)) | {IGNORE_INDEX}
