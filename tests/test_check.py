import numpy as np
import pytest
from PIL import Image

from pixelseg.cli.main import main
from pixelseg.data import check_dataset, open_dataset
from pixelseg.engine import train
from pixelseg.engine.config import config_from_dict
from pixelseg.errors import DataError
from tests.conftest import tiny_config


def broken_dataset(root):
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    good = np.zeros((8, 8), np.uint8)
    for name in ("ok", "mismatch", "outside", "unreadable", "lonely"):
        Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(images / f"{name}.png")
    Image.fromarray(good).save(masks / "ok.png")
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(masks / "mismatch.png")
    outside = good.copy()
    outside[0, 0] = 7
    Image.fromarray(outside).save(masks / "outside.png")
    (images / "unreadable.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(good).save(masks / "unreadable.png")
    Image.fromarray(good).save(masks / "orphan.png")
    (root / "classes.txt").write_text("background\nthing\n")
    return root


def test_check_lists_every_problem_by_file(tmp_path):
    report = check_dataset(open_dataset("folder", broken_dataset(tmp_path), None), progress=False)
    problems = {p.path.name: p.message for p in report.problems}
    assert problems["lonely.png"].startswith("missing pair")
    assert problems["orphan.png"].startswith("missing pair")
    assert problems["mismatch.png"] == "size mismatch: mask 8x6, image 8x8"
    assert problems["outside.png"] == "label values outside the classes: 7"
    assert problems["unreadable.png"].startswith("not a readable image")
    assert report.num_samples == 1 and not report.ok
    assert report.class_pixels.tolist() == [64, 0]


def test_clean_dataset_report(shapes_root):
    report = check_dataset(open_dataset("folder", shapes_root, "train"), progress=False)
    assert report.ok and report.num_samples == 16
    assert report.image_sizes == {(64, 48): 16}
    assert report.class_frequencies().sum() == pytest.approx(1.0)
    assert "no problems found" in report.format()


def test_cli_data_check_exit_code_and_listing(tmp_path, capsys):
    root = broken_dataset(tmp_path)
    assert main(["--quiet", "data", "check", str(root)]) == 1
    output = capsys.readouterr().out
    assert f"{root / 'masks' / 'outside.png'}: label values outside the classes: 7" in output
    assert "size mismatch" in output and "missing pair" in output


def test_training_refuses_a_broken_dataset_with_the_same_message(tmp_path):
    root = broken_dataset(tmp_path / "data")
    (root / "splits").mkdir()
    (root / "splits" / "all.txt").write_text("ok\nmismatch\noutside\nunreadable\nlonely\n")
    config = tiny_config(root, tmp_path / "run")
    config["data"].update(train_split="all", val_split=None)
    with pytest.raises(DataError) as caught:
        train(config_from_dict(config), progress=False)
    message = str(caught.value)
    assert "run `pixelseg data check` for the full report" in message
    assert f"{root / 'masks' / 'outside.png'}: label values outside the classes: 7" in message
    assert "size mismatch: mask 8x6, image 8x8" in message
    assert not (tmp_path / "run" / "last.pt").exists()
