"""End to end through the command line: generated dataset -> train -> eval -> predict."""

import json
import subprocess
import sys

import numpy as np
import yaml
from PIL import Image

from tests.conftest import tiny_config


def pixelseg(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pixelseg", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_train_eval_predict_through_the_cli(shapes_root, tmp_path):
    config = tiny_config(shapes_root, tmp_path / "run")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    trained = pixelseg("train", config_path, "--set", "train.epochs=2", "--set", "train.val_every=2")
    assert trained.returncode == 0, trained.stderr
    assert "epoch 2/2" in trained.stdout and "run folder" in trained.stdout
    assert "Traceback" not in trained.stderr

    evaluated = pixelseg("eval", tmp_path / "run" / "best.pt", "--out", tmp_path / "eval")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "mIoU" in evaluated.stdout and "triangle" in evaluated.stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "val" and metrics["images"] == 4 and 0 <= metrics["miou"] <= 1
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 0
    assert (tmp_path / "eval" / "class_iou.png").stat().st_size > 0
    assert (tmp_path / "eval" / "examples.png").stat().st_size > 0
    ranked = pixelseg("eval", tmp_path / "run" / "model", "--examples", "2", "--examples-by", "score", "--out",
                      tmp_path / "eval_ranked")
    assert ranked.returncode == 0 and (tmp_path / "eval_ranked" / "examples.png").stat().st_size > 0, ranked.stderr

    inputs = shapes_root / "images" / "val"
    predicted = pixelseg("predict", inputs, "--model", tmp_path / "run" / "model", "--out", tmp_path / "pred")
    assert predicted.returncode == 0, predicted.stderr
    outputs = sorted(p.name for p in (tmp_path / "pred").iterdir())
    assert len(outputs) == 3 * 4
    labels = np.asarray(Image.open(tmp_path / "pred" / "val_0000_labels.png"))
    assert labels.shape == (48, 64) and labels.max() < 4

    with_crf = pixelseg("eval", tmp_path / "run" / "model", "--crf", "--boundary-f1", "--out", tmp_path / "eval_crf")
    assert with_crf.returncode == 0, with_crf.stderr
    assert "dense CRF" in with_crf.stdout and "boundary F1" in with_crf.stdout and "prec." in with_crf.stdout
    scored = json.loads((tmp_path / "eval_crf" / "metrics.json").read_text())
    assert scored["crf"] is True and 0 <= scored["boundary_f1"] <= 1 and len(scored["precision"]) == 4
    predicted = pixelseg("predict", inputs, "--model", tmp_path / "run" / "model", "--crf", "--out", tmp_path / "p2")
    assert predicted.returncode == 0 and "dense CRF" in predicted.stdout, predicted.stderr


def test_classical_methods_through_the_cli(shapes_root, tmp_path):
    evaluated = pixelseg("eval", "--method", "kmeans", "--option", "clusters=4", "--data", shapes_root, "--out",
                         tmp_path / "eval")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["method"] == "kmeans" and metrics["options"] == {"clusters": 4}
    assert "whole dataset" in metrics["assignment"] and metrics["regions_per_image"] <= 4
    assert metrics["pixel_accuracy"] > 0.5

    inputs = shapes_root / "images" / "val"
    predicted = pixelseg("predict", inputs, "--method", "slic", "--option", "segments=300", "--out", tmp_path / "p")
    assert predicted.returncode == 0, predicted.stderr
    regions = np.asarray(Image.open(tmp_path / "p" / "val_0000_labels.png"))
    assert regions.shape == (48, 64) and len(np.unique(regions)) > 20

    grabcut = pixelseg("predict", inputs / "val_0000.png", "--method", "grabcut", "--option", "box=[5,5,60,44]",
                       "--out", tmp_path / "g")
    assert grabcut.returncode == 0, grabcut.stderr

    bad = pixelseg("predict", inputs, "--method", "otsy", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "did you mean 'otsu'" in bad.stderr and "Traceback" not in bad.stderr
    no_data = pixelseg("eval", "--method", "otsu")
    assert no_data.returncode == 2 and "--data" in no_data.stderr


def test_errors_are_one_line_without_traceback(tmp_path):
    missing = pixelseg("train", tmp_path / "nope.yaml")
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"pixelseg: error: {tmp_path / 'nope.yaml'}: config file not found"

    typo = tmp_path / "typo.yaml"
    typo.write_text("model: {name: unet}\ntrain: {epohcs: 3}\n")
    result = pixelseg("train", typo)
    assert result.returncode == 2 and "did you mean 'epochs'" in result.stderr and "Traceback" not in result.stderr

    bad_checkpoint = tmp_path / "bad.pt"
    bad_checkpoint.write_text("not a checkpoint")
    result = pixelseg("predict", tmp_path, "--model", bad_checkpoint, "--out", tmp_path / "o")
    assert result.returncode == 2 and "not a readable checkpoint" in result.stderr


def test_models_lists_the_registry():
    result = pixelseg("models")
    assert result.returncode == 0
    for name in ("unet", "fcn8s", "deeplabv3plus"):
        assert name in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "20.51M" in rows["deeplabv1"] and "251.80M" in rows["deconvnet"]  # the defaults' parameter counts
    import re

    assert all(re.search(r"\b(19|20)\d\d\)", line) for line in rows.values()), "every row names its paper's year"


def test_help_and_classical_methods_do_not_import_the_heavy_libraries():
    """`pixelseg --help` imports neither torch nor timm; the classical methods and the architectures' registry do
    not import timm (with torchvision, seconds of start-up) until a timm encoder is built."""
    probe = ("import sys; from pixelseg.cli.main import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))\n"
             "import pixelseg, pixelseg.engine.evaluate, pixelseg.classical\n"
             "model = pixelseg.create('enet', num_classes=3)\n"
             "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))\n"
             "pixelseg.create('unet', num_classes=3, encoder='resnet18')\n"
             "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()[-3:]
    assert lines == ["[]", "['torch']", "['timm', 'torch', 'torchvision']"], result.stdout


def test_a_diverging_run_ends_with_a_clear_message(shapes_root, tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config(shapes_root, tmp_path / "run")))
    trained = pixelseg("train", config_path, "--set", "optimizer.lr=1e30", "--set", "schedule.warmup_iters=0")
    assert trained.returncode == 2, trained.stderr
    assert "training diverged" in trained.stderr and "at epoch 1, batch" in trained.stderr
    assert "optimizer.lr" in trained.stderr and "Traceback" not in trained.stderr
