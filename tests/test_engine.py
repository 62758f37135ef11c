import contextlib
import csv

import numpy as np
import pytest
import torch

import pixelseg
from pixelseg.data import open_dataset
from pixelseg.engine import evaluate, predict_files, train
from pixelseg.engine import trainer as train_module
from pixelseg.engine.checkpoint import load_checkpoint, save_checkpoint
from pixelseg.engine.config import config_from_dict
from pixelseg.engine.loggers import read_log
from pixelseg.errors import CheckpointError, ConfigError, DataError
from pixelseg.inference import predict_logits
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def trained_run(shapes_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    train(config_from_dict(tiny_config(shapes_root, run)), progress=False)
    return run


def test_run_folder_contents(trained_run):
    for name in ("last.pt", "best.pt", "log.csv", "curve.png", "model/config.json", "model/model.safetensors"):
        assert (trained_run / name).is_file(), name
    rows = list(csv.DictReader((trained_run / "log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0 <= float(r["val_miou"]) <= 1 for r in rows)
    checkpoint = load_checkpoint(trained_run / "last.pt")
    for key in ("model", "optimizer", "scheduler", "epoch", "rng", "config", "history", "model_config"):
        assert key in checkpoint
    assert checkpoint["epoch"] == 2
    assert not list(trained_run.glob(".*.tmp*")), "temporary files left behind"
    log = read_log(trained_run)
    assert log["epochs"] == 2
    assert log["minutes"] == pytest.approx(sum(float(r["seconds"]) for r in rows) / 60)


def test_run_folder_keeps_the_config_it_trained_with(trained_run):
    from pixelseg.engine.config import load_config

    checkpoint = load_checkpoint(trained_run / "last.pt")
    again = load_config(trained_run / "train_config.yaml")  # what `pixelseg train RUN/train_config.yaml` reads
    assert again.to_dict() == checkpoint["config"]
    assert again.train.epochs == 2 and again.model["encoder"] == "regnetx_002"
    assert again.train.grad_clip is None  # a default the tiny config leaves out is written too


def _same_weights(model_dir, checkpoint_path) -> bool:
    from safetensors.torch import load_file

    saved, state = load_file(str(model_dir / "model.safetensors")), load_checkpoint(checkpoint_path)["model"]
    return saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in saved)


def test_model_folder_comes_from_the_best_epoch_or_with_keep_last_from_the_last(trained_run, shapes_root, tmp_path,
                                                                                monkeypatch):
    assert _same_weights(trained_run / "model", trained_run / "best.pt")
    scores = iter([0.9, 0.1])  # the validations of epochs 1 and 2: best.pt stays at epoch 1

    class Scored:
        def __init__(self, *args, **kwargs):
            self.metrics = {"miou": next(scores), "pixel_accuracy": 0.5}

    monkeypatch.setattr(train_module, "evaluate", Scored)
    train(config_from_dict(tiny_config(shapes_root, tmp_path, keep="last", steps_per_epoch=2)), progress=False)
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    assert _same_weights(tmp_path / "model", tmp_path / "last.pt")
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    with pytest.raises(ConfigError, match="keep"):
        config_from_dict(tiny_config(shapes_root, tmp_path, keep="newest"))


@pytest.mark.parametrize("warmup", [True, False])
def test_ema_is_the_average_of_the_steps_weights_and_is_validated_and_shipped(shapes_root, tmp_path, monkeypatch,
                                                                             warmup):
    decay, initial, steps = 0.8, {}, []
    original = train_module.ema_update

    def recording(average, model, rate):  # the average before the first step, the weights after each step
        if not initial:
            initial.update({k: v.detach().clone() for k, v in average.state_dict().items()})
        steps.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        original(average, model, rate)

    monkeypatch.setattr(train_module, "ema_update", recording)
    validated = []
    real_evaluate = train_module.evaluate

    def evaluate(model, *args, **kwargs):
        validated.append(model)
        return real_evaluate(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", evaluate)
    config = tiny_config(shapes_root, tmp_path, ema=decay, ema_warmup=warmup, steps_per_epoch=2, keep="last")
    train(config_from_dict(config), progress=False)
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    name = next(k for k, v in checkpoint["model"].items() if v.is_floating_point() and v.ndim == 4)
    n = len(steps)
    assert n == 4  # 2 epochs of 2 steps
    if warmup:  # decays 0, 1/2, 2/3, 3/4 (all under 0.8): the plain mean of the four steps' weights
        expected = sum(s[name] for s in steps) / n
    else:  # 0.8 from the first step: 0.8^4 of the starting weights remain
        expected = decay ** n * initial[name] + sum(decay ** (n - i) * (1 - decay) * s[name]
                                                    for i, s in enumerate(steps, 1))
    assert torch.allclose(checkpoint["ema"][name], expected, atol=1e-6)
    assert not torch.equal(checkpoint["ema"][name], checkpoint["model"][name])  # the average, not the last step
    assert _same_weights_as(tmp_path / "model", checkpoint["ema"])
    assert len(validated) == 2 and all(not any(p.requires_grad for p in m.parameters()) for m in validated)


def test_ema_is_refused_where_the_method_already_ships_an_average():
    from types import SimpleNamespace

    model, teacher = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    run = SimpleNamespace(model=model, method=SimpleNamespace(evaluated_model=lambda: teacher),
                          config=SimpleNamespace(method=SimpleNamespace(name="mean_teacher")))
    with pytest.raises(ConfigError, match="teacher"):
        train_module.weight_average(run)
    run.method = SimpleNamespace(evaluated_model=lambda: model)
    average = train_module.weight_average(run)
    assert torch.equal(average.weight, model.weight) and not average.weight.requires_grad


def _same_weights_as(model_dir, state) -> bool:
    from safetensors.torch import load_file

    saved = load_file(str(model_dir / "model.safetensors"))
    return saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in saved)


def test_read_log_names_a_broken_log(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,train_loss\n1,0.5\n")  # no seconds column
    with pytest.raises(DataError, match="log.csv: not a training log"):
        read_log(tmp_path)


def test_channels_last_training_is_the_same_arithmetic(shapes_root, tmp_path, monkeypatch):
    layouts = []
    real_step = train_module.train_one_epoch

    def recording(model, *args, **kwargs):
        layouts.append((kwargs.get("channels_last", args[-1]),
                        next(model.parameters()).is_contiguous(memory_format=torch.channels_last)))
        return real_step(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", recording)
    losses = {}
    for channels_last in (False, True):
        config = tiny_config(shapes_root, tmp_path / str(channels_last), epochs=1, steps_per_epoch=1,
                             channels_last=channels_last, amp="off")  # float32: bf16 rounds by layout
        train(config_from_dict(config), progress=False)
        losses[channels_last] = float(next(csv.DictReader((tmp_path / str(channels_last) / "log.csv").open()))
                                      ["train_loss"])
        pixelseg.load(tmp_path / str(channels_last) / "model")  # safetensors needs contiguous tensors on save
    assert layouts == [(False, False), (True, True)]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)  # the first batch, before any update


def test_resume_after_an_interruption_reaches_the_same_weights(shapes_root, tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train(config_from_dict(tiny_config(shapes_root, straight, epochs=3)), progress=False)

    interrupted = tmp_path / "interrupted"
    original = train_module.train_one_epoch

    def interrupt_in_epoch_two(*args, **kwargs):
        if args[6] == 2:  # the epoch argument
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", interrupt_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(config_from_dict(tiny_config(shapes_root, interrupted, epochs=3)), progress=False)
    assert load_checkpoint(interrupted / "last.pt")["epoch"] == 1
    monkeypatch.setattr(train_module, "train_one_epoch", original)
    train(config_from_dict(tiny_config(shapes_root, interrupted, epochs=3)), resume=True, progress=False)

    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(interrupted / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]


def test_a_stop_mid_epoch_saves_that_step_and_resume_reaches_the_same_weights(shapes_root, tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train(config_from_dict(tiny_config(shapes_root, straight, epochs=3, ema=0.9)), progress=False)

    calls = []

    @contextlib.contextmanager
    def stop_at_the_sixth_step():  # 4 steps per epoch: epoch 2, after its second step
        yield lambda: calls.append(1) or len(calls) == 6

    monkeypatch.setattr(train_module, "stop_requests", stop_at_the_sixth_step)
    stopped = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        train(config_from_dict(tiny_config(shapes_root, stopped, epochs=3, ema=0.9)), progress=False)
    state = load_checkpoint(stopped / "last.pt")
    assert state["epoch"] == 1 and state["partial_epoch"]["steps"] == 2 and len(state["history"]) == 1
    assert state["partial_epoch"]["seconds"] > 0
    # The epoch's logged time includes the steps before the stop: mark them as an hour and look for it.
    state["partial_epoch"]["seconds"] = 3600.0
    save_checkpoint(stopped / "last.pt", state)
    monkeypatch.undo()
    train(config_from_dict(tiny_config(shapes_root, stopped, epochs=3, ema=0.9)), resume=True, progress=False)
    logged = load_checkpoint(stopped / "last.pt")["history"]
    assert logged[1]["seconds"] >= 3600 and logged[0]["seconds"] < 3600 and logged[2]["seconds"] < 3600

    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(stopped / "last.pt")
    assert a["epoch"] == b["epoch"] == 3 and b["partial_epoch"] is None
    for key, tensor in a["model"].items():  # the weights and their moving average (train.ema)
        assert torch.equal(tensor, b["model"][key]) and torch.equal(a["ema"][key], b["ema"][key]), key
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]


def test_deterministic_mode_gives_identical_metrics_and_weights(shapes_root, tmp_path):
    runs = []
    try:
        for name in ("a", "b"):
            config = tiny_config(shapes_root, tmp_path / name, deterministic=True)
            config["data"]["workers"] = 2  # loader workers must not change the result either
            train(config_from_dict(config), progress=False)
            runs.append(load_checkpoint(tmp_path / name / "last.pt"))
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        train_module.set_deterministic(False)
    drop_time = [{k: v for k, v in row.items() if k != "seconds"} for row in runs[0]["history"]]
    assert drop_time == [{k: v for k, v in row.items() if k != "seconds"} for row in runs[1]["history"]]
    for key, tensor in runs[0]["model"].items():
        assert torch.equal(tensor, runs[1]["model"][key]), key


def test_resume_with_another_architecture_is_refused(shapes_root, trained_run, tmp_path):
    config = tiny_config(shapes_root, tmp_path)
    config["model"]["decoder_channels"] = [16, 16, 16, 8, 8]
    with pytest.raises(CheckpointError, match="checkpoint is for"):
        train(config_from_dict(config), resume=trained_run / "last.pt", progress=False)


def test_training_learns_the_shapes(shapes_root, tmp_path):
    # 15 epochs at lr 3e-3 (RegNetX-200MF encoder, 1 thread) reach 0.938, 0.976 and 0.868 for seeds 0, 1 and 2
    # (ResNet-18: 0.883, 0.934, 0.943); 10 epochs at 5e-3 gave 0.80-0.88 with ResNet-18 (seed-dependent).
    config = tiny_config(shapes_root, tmp_path, epochs=15)
    train(config_from_dict(config), progress=False)
    model = pixelseg.load(tmp_path / "best.pt")
    result = evaluate(model, open_dataset("folder", shapes_root, "train"), progress=False)
    assert result.metrics["pixel_accuracy"] > 0.85  # background alone is ~0.70


def test_predict_api_returns_labels_and_probabilities(trained_run, shapes_root):
    model = pixelseg.load(trained_run / "best.pt")
    image_path = next((shapes_root / "images" / "val").iterdir())
    prediction = model.predict(image_path)
    assert prediction.labels.shape == (48, 64) and prediction.probabilities.shape == (4, 48, 64)
    assert np.allclose(prediction.probabilities.sum(0), 1, atol=1e-5)
    assert (prediction.labels == prediction.probabilities.argmax(0)).all()
    assert prediction.colorize().shape == (48, 64, 3)


def test_sliding_window_agrees_with_whole_image(trained_run):
    model = pixelseg.load(trained_run / "best.pt")
    images = torch.randn(1, 3, 64, 96)
    whole = predict_logits(model, images)
    tiled = predict_logits(model, images, tile=(64, 96))
    assert torch.allclose(whole, tiled, atol=1e-4)
    windows = predict_logits(model, images, tile=(32, 32), overlap=0.5)
    assert windows.shape == whole.shape


def test_evaluation_writes_report(trained_run, shapes_root, tmp_path):
    model = pixelseg.load(trained_run / "model")
    result = evaluate(model, open_dataset("folder", shapes_root, "val"), progress=False, examples=2)
    paths = result.save(tmp_path / "eval", model.classes)
    assert set(paths) == {"metrics", "confusion", "class_iou", "examples"}
    assert all(p.is_file() for p in paths.values())
    assert len(result.examples) == 2 and result.examples[0][0].shape == (48, 64, 3)
    assert "mIoU" in result.table() and "triangle" in result.table()
    assert result.confusion.sum() == sum(result.metrics["pixels"])


def test_predict_files_never_overwrites_inputs_and_skips_bad_files(trained_run, shapes_root, tmp_path):
    model = pixelseg.load(trained_run / "best.pt")
    folder = tmp_path / "in"
    folder.mkdir()
    source = next((shapes_root / "images" / "val").iterdir())
    (folder / "a.png").write_bytes(source.read_bytes())
    (folder / "broken.png").write_bytes(b"garbage")
    summary = predict_files(model, [str(folder / "*.png")], tmp_path / "out", progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_color.png", "a_labels.png", "a_overlay.png"]
    assert len(summary.failed) == 1 and "broken.png" in summary.failed[0]
    (folder / "a_labels.png").write_bytes(source.read_bytes())
    with pytest.raises(DataError, match="would overwrite an input"):
        predict_files(model, [folder / "a.png", folder / "a_labels.png"], folder, progress=False)


def test_test_time_augmentation_averages_flipped_and_rescaled_passes():
    from pixelseg.inference import predict_logits
    from pixelseg.models import create

    torch.manual_seed(0)
    model = create("unet", num_classes=3, encoder="resnet18", decoder_channels=[16, 8, 8, 8, 8]).eval()
    images = torch.randn(1, 3, 40, 56)
    plain = predict_logits(model, images)
    mirrored = predict_logits(model, images.flip(-1)).flip(-1)
    expected = (plain.softmax(1) + mirrored.softmax(1)) / 2
    assert torch.allclose(predict_logits(model, images, flip=True).exp(), expected, atol=1e-5)
    # A flipped input gives the flipped answer: the average is symmetric under flipping.
    both = predict_logits(model, images, flip=True, scales=(0.75, 1.0))
    assert both.shape == plain.shape
    assert torch.allclose(predict_logits(model, images.flip(-1), flip=True, scales=(0.75, 1.0)).flip(-1), both,
                          atol=1e-4)


def test_tensorboard_logger_writes_step_and_epoch_scalars(shapes_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(shapes_root, tmp_path / "run", epochs=2, steps_per_epoch=2, logger="tensorboard")
    train(config_from_dict(config), progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "time/data", "time/step", "epoch/train_loss", "epoch/val_miou"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]  # each optimizer step, across epochs
    assert all(e.value > 0 for e in events.Scalars("time/step"))
    assert all(e.value >= 0 for e in events.Scalars("time/data"))
    assert [e.step for e in events.Scalars("epoch/val_miou")] == [1, 2]


def test_examples_by_score_keep_the_best_and_the_worst_images_captioned():
    from pixelseg.engine.evaluate import ExamplePicker

    truth = np.zeros((4, 4), dtype=np.int64)
    truth[:, 2:] = 1
    scores = [0.6, 0.1, 0.9, 0.4, 1.0, 0.2, 0.5]  # share of the image predicted right -> its mIoU ranks the same way
    picker = ExamplePicker(len(scores), 4, by="score")
    reads = []
    for index, share in enumerate(scores):
        predicted = truth.copy()
        wrong = int(round((1 - share) * 16))
        predicted.reshape(-1)[:wrong] = 1 - predicted.reshape(-1)[:wrong]
        picker.offer(index, predicted, truth, 2, lambda index=index: reads.append(index) or np.zeros((4, 4, 3)))
    names = [f"image{i}" for i in range(len(scores))]
    captions = [example[3] for example in picker.examples(names)]
    assert [c.split(",")[0] for c in captions] == ["best: image4", "best: image2", "worst: image1", "worst: image5"]
    assert captions[0].endswith("mIoU 100.0 %")
    assert 6 not in reads  # image 6 (0.5) came when the groups were full and fell between them: never read

    spread = ExamplePicker(5, 2, by="spread")
    for index in range(5):
        spread.offer(index, truth, truth, 2, lambda index=index: np.full((4, 4, 3), index))
    assert [int(example[0][0, 0, 0]) for example in spread.examples(names)] == [0, 4]
    with pytest.raises(ConfigError, match="examples_by"):
        ExamplePicker(5, 2, by="random")


def test_training_curve_without_validation_has_no_empty_panel(tmp_path):
    """A run with no validation split (the shipped models' final runs) plots its loss alone, not beside an empty
    mIoU panel; with validation both panels are drawn."""
    from PIL import Image

    from pixelseg.visualize import plot_training_curve

    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_miou": None} for e in range(1, 5)]
    plot_training_curve(rows, tmp_path / "loss_only.png")
    rows[-1]["val_miou"] = 0.5
    plot_training_curve(rows, tmp_path / "both.png")
    loss_only, both = (Image.open(tmp_path / name).size for name in ("loss_only.png", "both.png"))
    assert loss_only[0] < 0.7 * both[0]


def test_loader_workers_leave_sigint_and_sigterm_to_the_main_process():
    """A terminal's Ctrl-C, `pkill` or a job scheduler signals the whole process group: the loader workers ignore
    both signals, so the main process stops at a step boundary with the batches it still needs (before, SIGTERM
    killed the workers and the run ended in PyTorch's "DataLoader worker is killed by signal")."""
    import subprocess
    import sys

    code = ("import signal; from pixelseg.engine.trainer import _ignore_sigint; _ignore_sigint(0); "
            "print(*(signal.getsignal(s) is signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_encoder_lr_scales_the_encoders_first_adamw_step():
    """AdamW's first step moves each weight by lr * g / (|g| + eps), about lr wherever the gradient is not tiny: with
    ``optimizer.encoder_lr: 0.1`` the encoder's weights move a tenth as far as the decoder's, and the log's lr (the
    first group) is the decoder's."""
    from types import SimpleNamespace

    from pixelseg.engine.config import load_config
    from pixelseg.engine.methods import Supervised
    from pixelseg.models import create

    config = load_config(None, ["model.name=unet", "optimizer.lr=0.01", "optimizer.weight_decay=0",
                                "optimizer.encoder_lr=0.1"])
    torch.manual_seed(0)
    model = create("unet", num_classes=2, encoder="regnetx_002", decoder_channels=[8, 8, 8, 8, 8])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = train_module.build_optimizer(config, model)
    scheduler = train_module.build_scheduler(config, optimizer, total_steps=10)
    run = SimpleNamespace(loss_fn=torch.nn.functional.cross_entropy, device=torch.device("cpu"), amp_dtype=None)
    images, masks = torch.randn(2, 3, 32, 32), torch.randint(0, 2, (2, 32, 32))
    train_module.train_one_epoch(model, Supervised(run), optimizer, scheduler, [(images, masks)], torch.device("cpu"),
                                 1, progress=False)

    def median_move(in_encoder: bool) -> float:
        moves = torch.cat([(p.detach() - before[name]).abs().flatten() for name, p in model.named_parameters()
                           if name.startswith("encoder.") == in_encoder])
        return float(moves[moves > 0].median())

    assert median_move(False) == pytest.approx(0.01, rel=0.05)
    assert median_move(True) == pytest.approx(0.001, rel=0.05)
    assert optimizer.param_groups[0]["initial_lr"] == 0.01


def test_encoder_lr_is_refused_for_a_network_without_a_separate_encoder():
    from pixelseg.engine.config import load_config
    from pixelseg.models import create

    config = load_config(None, ["model.name=enet", "optimizer.encoder_lr=0.1"])
    with pytest.raises(ConfigError, match="optimizer.encoder_lr: enet has no separate encoder"):
        train_module.build_optimizer(config, create("enet", num_classes=3))
