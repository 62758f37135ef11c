"""Splits that hold out whole groups of files (sequences), and the CamVid layout reading them."""

from __future__ import annotations

import numpy as np
import pytest

from pixelseg.cli.main import main
from pixelseg.data import open_dataset
from pixelseg.data.layouts import detect_layout
from pixelseg.data.splits import group_of, group_split
from pixelseg.errors import DataError
from pixelseg.io import write_image

from .conftest import requires_shared


def camvid_like(root, splits: dict[str, list[str]]):
    for split, stems in splits.items():
        for index, stem in enumerate(stems):
            write_image(root / split / f"{stem}.png", np.full((8, 12, 3), index, np.uint8))
            write_image(root / f"{split}annot" / f"{stem}.png", np.full((8, 12), index % 12, np.uint8))
    return root


def test_groups_come_from_the_file_name():
    assert group_of("0016E5_07959") == "0016E5"
    assert group_of("V3_p30_12", r"^(V\d_[a-z0-9]+)_") == "V3_p30"
    with pytest.raises(DataError, match="x: the group pattern '.*' does not match this file name"):
        group_of("x", r"^[0-9]+")
    kept, held = group_split(["a_1", "b_1", "a_2", "c_9"], ["a"])
    assert kept == ["b_1", "c_9"] and held == ["a_1", "a_2"]
    with pytest.raises(DataError, match=r"no file belongs to group\(s\) z; the groups are: a \(2\), b \(1\)"):
        group_split(["a_1", "a_2", "b_1"], ["z"])


def test_data_split_writes_lists_that_the_camvid_layout_reads(tmp_path, capsys):
    root = camvid_like(tmp_path / "camvid", {"train": ["0001TP_1", "0006R0_1", "0006R0_2"], "val": ["0016E5_5"]})
    out = tmp_path / "lists"
    assert main(["data", "split", str(root), "--holdout", "0006R0", "--from", "train,val", "--out", str(out),
                 "--train-name", "fit", "--val-name", "unseen"]) == 0
    assert "unseen.txt: 2 files (0006R0 2)" in capsys.readouterr().out
    fit = open_dataset("camvid", root, "fit", splits_dir=str(out))
    unseen = open_dataset(None, root, "unseen", splits_dir=str(out))
    assert [s.name for s in fit.samples] == ["0001TP_1", "0016E5_5"] and not fit.problems
    assert [s.name for s in unseen.samples] == ["0006R0_1", "0006R0_2"]
    assert unseen.samples[0].mask == root / "trainannot" / "0006R0_1.png"
    assert len(open_dataset("camvid", root, "all", splits_dir=str(out))) == 4
    # nothing the user had is overwritten
    assert main(["data", "split", str(root), "--holdout", "0006R0", "--out", str(out), "--train-name", "fit"]) == 2
    assert "fit.txt" in capsys.readouterr().err


def test_a_listed_stem_without_files_is_a_problem_naming_the_list(tmp_path):
    root = camvid_like(tmp_path / "camvid", {"train": ["0001TP_1"]})
    (root / "splits").mkdir()
    (root / "splits" / "mine.txt").write_text("# comment\n0001TP_1\n0001TP_404\n")
    dataset = open_dataset("camvid", root, "mine")
    assert len(dataset) == 1 and "mine.txt: 0001TP_404: listed, but no image and label" in str(dataset.problems[0])


def test_a_camvid_folder_with_only_a_test_split_is_detected(tmp_path):
    root = camvid_like(tmp_path / "CamVid", {"test": ["Seq05VD_f0001", "0001TP_008550"]})
    assert detect_layout(root) == "camvid"
    dataset = open_dataset(None, root, "test")
    assert dataset.name == "camvid" and len(dataset) == 2 and dataset.classes.num_classes == 11


@pytest.mark.realdata
def test_the_shipped_camvid_sequence_lists_hold_out_0006R0():
    requires_shared("camvid")
    train = open_dataset("camvid", "camvid", "train_0001TP_0016E5", splits_dir="camvid_sequences")
    val = open_dataset("camvid", "camvid", "val_0006R0", splits_dir="camvid_sequences")
    assert len(train) == 367 and len(val) == 101 and not train.problems and not val.problems
    assert {s.name.split("_")[0] for s in val.samples} == {"0006R0"}
    assert not {s.name for s in train.samples} & {s.name for s in val.samples}


def test_split_lists_win_over_the_split_folders_of_a_folder_dataset(tmp_path):
    # images/train/ holds every labelled image; the lists carve a validation split out of it. Reading the folder
    # named "train" instead of the list would train on the validation images.
    root = tmp_path / "portrait"
    for stem in ("00001", "00002", "00010"):
        write_image(root / "images" / "train" / f"{stem}.png", np.zeros((8, 12, 3), np.uint8))
        write_image(root / "masks" / "train" / f"{stem}.png", np.zeros((8, 12), np.uint8))
    (root / "classes.json").write_text('{"names": ["background", "person"]}')
    out = tmp_path / "lists"
    assert main(["data", "split", str(root), "--holdout", "0", "--pattern", r"\d{4}(\d)$", "--out", str(out)]) == 0
    train = open_dataset("folder", root, "train", splits_dir=str(out))
    val = open_dataset("folder", root, "val", splits_dir=str(out))
    assert [s.name for s in train.samples] == ["00001", "00002"] and [s.name for s in val.samples] == ["00010"]
    assert len(open_dataset("folder", root, "train")) == 3  # no lists: the folder
