"""The experiment scripts build the training command each row names (a fake ``pixelseg`` records it): a row that
trains the wrong thing would otherwise show only as a wrong figure in the docs, an hour later."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def row_command(row: str, tmp_path: Path, script: str = "unseen_camvid.sh",
                env: dict | None = None) -> tuple[int, list[str], str]:
    """scripts/SCRIPT ROW with a ``pixelseg`` that records its arguments and fails, so the row stops
    before training: (exit code, the recorded arguments, stderr)."""
    record = tmp_path / "arguments"
    fake = tmp_path / "bin" / "pixelseg"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {shlex.quote(str(record))}\nexit 1\n')
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(ROOT / "scripts" / script), row], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "BIN": str(fake.parent), **(env or {})}, timeout=60)
    arguments = record.read_text().splitlines() if record.exists() else []
    return done.returncode, arguments, done.stderr


def settings(arguments: list[str]) -> list[str]:
    return [arguments[i + 1] for i, a in enumerate(arguments) if a == "--set"]


@pytest.mark.parametrize(("row", "expected"), [
    ("recipe", []),
    ("seed1", ["train.seed=1"]),
    ("fp32_seed1", ["train.amp=off", "train.seed=1"]),
    ("deeplabv3plus_seed1", ["model.name=deeplabv3plus", "train.seed=1"]),
    ("enet_seed1", ["model={name: enet}", "train.seed=1"]),
    ("fcdensenet56", ["model={name: fcdensenet56}"]),
    ("refinenet", ["model.name=refinenet", "train.grad_clip=1.0"]),
    ("label_smoothing_seed1", ["loss.ce_label_smoothing=0.1", "train.seed=1"]),
    ("ema", ["train.ema=0.99", "train.ema_warmup=false"]),
    ("ema_ramp_seed1", ["train.ema=0.99", "train.seed=1"]),
    ("da_mean_teacher", ["data.unlabelled=runs/unseen_short/target_0006R0", "method.name=mean_teacher",
                         "method.ema_warmup=false"]),
    ("semi_eighth_separate", ["data.train_split=train_eighth", "train.epochs=64", "train.val_every=64",
                              "data.unlabelled=runs/unseen_short/unlabelled_seven_eighths", "method.name=mean_teacher",
                              "method.ema_warmup=false", "method.separate_strong=true"]),
    ("semi_eighth_ramp", ["data.train_split=train_eighth", "train.epochs=64", "train.val_every=64",
                          "data.unlabelled=runs/unseen_short/unlabelled_seven_eighths", "method.name=mean_teacher"]),
    ("da_dacs", ["data.unlabelled=runs/unseen_short/target_0006R0", "method.name=mean_teacher",
                 "method.mix_labelled=true"]),
    ("sup_sixteenth", ["data.train_split=train_sixteenth", "train.epochs=160", "train.val_every=160"]),
])
def test_each_unseen_row_trains_what_it_names(row, expected, tmp_path):
    code, arguments, _ = row_command(row, tmp_path)
    assert code != 0 and arguments[:3] == ["--quiet", "train", "configs/camvid_unseen_short.yaml"]
    assert settings(arguments) == [f"train.out_dir=runs/unseen_short/{row}", *expected]
    assert "--resume" not in arguments or (ROOT / "runs" / "unseen_short" / row / "last.pt").exists()


def test_an_unknown_row_is_refused_by_name(tmp_path):
    code, arguments, stderr = row_command("deeplabv9", tmp_path)
    assert code == 2 and arguments == [] and "unknown row deeplabv9" in stderr


@pytest.mark.parametrize(("row", "expected"), [
    ("all", []),
    ("sup_quarter_seed1", ["data.train_split=train_quarter", "train.epochs=168", "train.val_every=168",
                           "train.seed=1"]),
    ("semi_quarter_ramp", ["data.train_split=train_quarter", "train.epochs=168", "train.val_every=168",
                           "data.unlabelled=runs/fewer_labels_roads/unlabelled_three_quarters",
                           "method.name=mean_teacher"]),
    ("semi_quarter", ["data.train_split=train_quarter", "train.epochs=168", "train.val_every=168",
                      "data.unlabelled=runs/fewer_labels_roads/unlabelled_three_quarters", "method.name=mean_teacher",
                      "method.ema_warmup=false"]),
])
def test_each_roads_row_trains_what_it_names(row, expected, tmp_path):
    if row.startswith("semi") and not (ROOT.parent / "shared" / "data" / "roads").is_dir():
        pytest.skip("the semi-supervised row links the training tiles of ../shared/data/roads")
    code, arguments, _ = row_command(row, tmp_path, "fewer_labels_roads.sh")
    assert code != 0 and arguments[:3] == ["--quiet", "train", "configs/roads_lite0.yaml"]
    assert settings(arguments) == [f"train.out_dir=runs/fewer_labels_roads/{row}", *expected]


def test_the_roads_quarter_is_a_quarter_of_the_training_tiles_and_none_of_the_validation_ones():
    def stems(name):
        lines = (ROOT / "pixelseg/data/split_lists/roads_last_digit_3_8" / f"{name}.txt").read_text().splitlines()
        return {line for line in lines if line and not line.startswith("#")}
    quarter, train = stems("train_quarter"), stems("train")
    assert len(quarter) == 15 and quarter < train and not quarter & stems("val")


@pytest.mark.parametrize(("name", "config"), [("fashion", "configs/fashion_lite2.yaml"),
                                              ("retina", "configs/retina_lite0.yaml")])
def test_each_application_trains_its_recipe(name, config, tmp_path):
    runs = tmp_path / "apps"
    code, arguments, _ = row_command(name, tmp_path, "train_applications.sh", {"RUNS": str(runs)})
    assert code != 0 and arguments[:3] == ["--quiet", "train", config]
    assert settings(arguments) == [f"train.out_dir={runs / name}"]


def test_an_application_without_a_recipe_is_refused(tmp_path):
    code, arguments, stderr = row_command("clouds", tmp_path, "train_applications.sh", {"RUNS": str(tmp_path)})
    assert code == 2 and not arguments and "no recipe for clouds" in stderr
