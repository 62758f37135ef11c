"""Training methods (pixelseg.engine.methods): the pieces with known answers, the config keys, bad input, and a tiny
mean-teacher run end to end that stops and resumes to the same weights."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import pixelseg.engine.trainer as train_module
from pixelseg.engine.checkpoint import load_checkpoint
from pixelseg.engine.config import config_from_dict
from pixelseg.engine.methods.base import ema_update
from pixelseg.engine.methods.semi import (
    classmix_masks,
    confident_pseudo_labels,
    cutmix,
    cutmix_boxes,
    mix_labelled,
    strong_view,
)
from pixelseg.engine.trainer import train
from pixelseg.errors import ConfigError, DataError
from pixelseg.io import write_image
from tests.conftest import tiny_config


def test_ema_update_is_the_weighted_average_of_teacher_and_student():
    teacher, student = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        teacher.weight.fill_(1.0)
        student.weight.fill_(3.0)
        student.running_mean.fill_(2.0)
        student.num_batches_tracked.fill_(7)
    ema_update(teacher, student, decay=0.75)
    assert torch.allclose(teacher.weight, torch.full((2,), 1.5))  # 0.75 * 1 + 0.25 * 3
    assert torch.allclose(teacher.running_mean, torch.full((2,), 0.5))  # 0.75 * 0 + 0.25 * 2
    assert int(teacher.num_batches_tracked) == 7


@pytest.mark.parametrize("warmup", [True, False])
def test_the_mean_teachers_decay_ramps_up_from_a_plain_average(shapes_root, tmp_path, unlabelled_folder, warmup):
    """With the ramp (Mean Teacher's and UniMatch's code) the first update makes the teacher the student (decay
    0), the second the mean of the two; without it the teacher keeps 0.9 of its initial weights."""
    config = mean_teacher_config(shapes_root, tmp_path / "run", unlabelled_folder)
    config["method"]["ema_warmup"] = warmup
    run = train_module.build_run(config_from_dict(config), progress=False)
    teacher, student = run.method.teacher, run.model
    start = [p.detach().clone() for p in student.parameters()]
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(1.0)
    run.method.after_step()
    for t, s, s0 in zip(teacher.parameters(), student.parameters(), start, strict=True):
        assert torch.allclose(t, s if warmup else 0.9 * s0 + 0.1 * s)
    if warmup:
        with torch.no_grad():
            for parameter in student.parameters():
                parameter.add_(1.0)
        run.method.after_step()  # decay min(1 - 1/2, 0.9) = 0.5
        assert all(torch.allclose(t, s - 0.5) for t, s in zip(teacher.parameters(), student.parameters(), strict=True))


def test_pseudo_labels_keep_only_confident_valid_pixels():
    probabilities = torch.tensor([[0.96, 0.50, 0.10], [0.04, 0.50, 0.90]]).view(1, 2, 1, 3)
    valid = torch.tensor([[[True, True, False]]])
    assert confident_pseudo_labels(probabilities, 0.95).tolist() == [[[0, 255, 255]]]
    assert confident_pseudo_labels(probabilities, 0.85).tolist() == [[[0, 255, 1]]]
    assert confident_pseudo_labels(probabilities, 0.85, valid).tolist() == [[[0, 255, 255]]]


def test_cutmix_takes_image_and_labels_of_the_next_sample_inside_the_box():
    images = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 8, 8).contiguous()
    labels = torch.arange(3).view(3, 1, 1).expand(3, 8, 8).contiguous()
    boxes = cutmix_boxes(3, 8, 8, torch.Generator().manual_seed(0), area=0.25)
    assert all(0 < b.sum() <= 16 for b in boxes)
    mixed, mixed_labels = cutmix(images, labels, boxes)
    for index in range(3):
        source = (index - 1) % 3  # roll by one: sample i takes sample i-1's pixels
        assert torch.all(mixed[index][:, boxes[index]] == source) and torch.all(mixed[index][:, ~boxes[index]] == index)
        assert torch.equal(mixed_labels[index] == source, boxes[index])
    assert torch.equal(mixed[:, 0].long(), mixed_labels)  # pixels and labels moved together


def test_classmix_masks_take_half_of_each_samples_classes_and_never_ignored_pixels():
    labels = torch.tensor([[0, 1, 2, 3], [5, 5, 255, 255]]).view(2, 1, 4)  # four classes; one class and void
    for seed in range(5):
        masks = classmix_masks(labels, torch.Generator().manual_seed(seed))
        assert masks[0].sum() == 2 and masks[1].tolist() == [[True, True, False, False]]
    chosen = {tuple(classmix_masks(labels, torch.Generator().manual_seed(s))[0, 0].tolist()) for s in range(20)}
    assert len(chosen) > 1  # the classes are drawn, not always the same ones


def test_mix_labelled_pastes_labelled_classes_with_their_labels_onto_the_unlabelled_images():
    images = torch.full((1, 3, 1, 4), 9.0)
    labels = torch.tensor([[[0, 0, 1, 255]]])
    unlabelled = torch.zeros(2, 3, 1, 4)
    pseudo = torch.tensor([[[7, 255, 7, 7]], [[8, 8, 8, 8]]])
    mixed, mixed_labels = mix_labelled(images, labels, unlabelled, pseudo, torch.Generator().manual_seed(0))
    for index in range(2):  # one labelled image, cycled over the two unlabelled ones
        pasted = mixed[index, 0, 0] == 9
        assert pasted.sum() in (1, 2) and not pasted[3]  # class 0 (two pixels) or class 1 (one), never void
        assert torch.equal(mixed_labels[index, 0][pasted], labels[0, 0][pasted])
        assert torch.equal(mixed_labels[index, 0][~pasted], pseudo[index, 0][~pasted])
    with pytest.raises(ConfigError, match="give both the same data.crop_size"):
        mix_labelled(images, labels, torch.zeros(2, 3, 2, 4), pseudo, torch.Generator())


def one_mean_teacher_step(config: dict) -> tuple[torch.Tensor, torch.Tensor, list]:
    """One batch loss of the run ``config`` builds: (the loss, the labelled batch's masks, the targets each call of
    the run's loss function was given)."""
    run = train_module.build_run(config_from_dict(config), progress=False)
    seen = []
    original = run.loss_fn
    run.loss_fn = lambda logits, labels: seen.append(labels) or original(logits, labels)
    images, masks = next(iter(train_module.epoch_loader(run, 1, None)))
    return run.method.batch_loss(run.trained, images, masks), masks, seen


def test_mean_teacher_with_mix_labelled_puts_true_labels_into_the_student_targets(shapes_root, tmp_path,
                                                                                  unlabelled_folder):
    config = mean_teacher_config(shapes_root, tmp_path / "run", unlabelled_folder)
    config["method"].update(threshold=1.01, mix_labelled=True, unlabelled_loss="training")  # no confident pixel
    loss, masks, seen = one_mean_teacher_step(config)
    assert torch.isfinite(loss) and len(seen) == 2  # the pasted pixels are labelled although the teacher is unsure
    targets = seen[1][seen[1] != 255]
    assert len(targets) > 0 and set(targets.unique().tolist()) <= set(masks.unique().tolist())


def test_strong_view_keeps_the_geometry_and_the_value_range():
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    images = torch.zeros(4, 3, 16, 16)
    images[:, :, 4:12, 4:12] = 1.5  # a bright square on a mean background, normalised
    strong = strong_view(images, mean, std, torch.Generator().manual_seed(0))
    rgb = strong * 0.25 + 0.5
    assert strong.shape == images.shape and rgb.min() >= 0 and rgb.max() <= 1 + 1e-6
    inside, outside = rgb[:, :, 6:10, 6:10].mean(), rgb[:, :, :2, :2].mean()
    assert inside > outside  # the square is still where it was


def train_interrupted_in_epoch_two_then_resumed(config, monkeypatch):
    """Train ``config`` (a callable giving a fresh Config), stopped by Ctrl-C as epoch 2 starts, then ``--resume``."""
    original = train_module.train_one_epoch

    def interrupt_in_epoch_two(*args, **kwargs):
        if args[6] == 2:  # the epoch argument
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", interrupt_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(config(), progress=False)
    monkeypatch.setattr(train_module, "train_one_epoch", original)
    train(config(), resume=True, progress=False)


def straight_and_resumed_runs(config, tmp_path, monkeypatch) -> tuple[dict, dict]:
    """The last checkpoints of a straight run and of one stopped in epoch 2 and resumed (``config(out_dir)`` gives a
    fresh Config), after checking that both end with the same weights."""
    train(config(tmp_path / "straight"), progress=False)
    train_interrupted_in_epoch_two_then_resumed(lambda: config(tmp_path / "interrupted"), monkeypatch)
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(tmp_path / "interrupted" / "last.pt")
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    return a, b


def mean_teacher_config(shapes_root, out_dir, unlabelled, **train):
    config = tiny_config(shapes_root, out_dir, **train)
    config["data"]["unlabelled"] = str(unlabelled)
    config["method"] = {"name": "mean_teacher", "threshold": 0.5, "ema_decay": 0.9}
    return config


@pytest.fixture
def unlabelled_folder(shapes_root, tmp_path):
    folder = tmp_path / "unlabelled"
    shutil.copytree(shapes_root / "images" / "val", folder)
    return folder


def test_method_keys_are_checked_with_a_suggestion(shapes_root, tmp_path, unlabelled_folder):
    config = mean_teacher_config(shapes_root, tmp_path / "run", unlabelled_folder)
    config["method"]["treshold"] = 0.9
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        config_from_dict(config)
    with pytest.raises(ConfigError, match="unknown training method 'mean_teachr'.*mean_teacher"):
        config_from_dict({"model": {"name": "unet"}, "method": {"name": "mean_teachr"}})


def test_bad_unlabelled_folders_are_clear_errors(shapes_root, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no images"):
        train(config_from_dict(mean_teacher_config(shapes_root, tmp_path / "a", empty)), progress=False)
    with_masks = tmp_path / "with_masks"
    shutil.copytree(shapes_root / "images" / "val", with_masks)
    shutil.copy(shapes_root / "masks" / "val" / "val_0000.png", with_masks / "zz_mask.png")
    with pytest.raises(DataError, match="zz_mask.png looks like a label mask"):
        train(config_from_dict(mean_teacher_config(shapes_root, tmp_path / "b", with_masks)), progress=False)
    config = tiny_config(shapes_root, tmp_path / "c")
    config["method"] = {"name": "mean_teacher"}
    with pytest.raises(ConfigError, match="needs data.unlabelled"):
        train(config_from_dict(config), progress=False)


def test_mean_teacher_trains_ships_its_teacher_and_resumes_to_the_same_weights(shapes_root, tmp_path,
                                                                                unlabelled_folder, monkeypatch):
    straight = tmp_path / "straight"
    train(config_from_dict(mean_teacher_config(shapes_root, straight, unlabelled_folder, epochs=2)), progress=False)
    state = load_checkpoint(straight / "last.pt")
    teacher, student = state["method"]["teacher"], state["model"]
    assert state["method"]["steps"] == 8  # 16 training images, batch 4, 2 epochs: an EMA update per step
    assert any(not torch.equal(teacher[k], student[k]) for k in student if student[k].is_floating_point())
    from safetensors.torch import load_file

    shipped = load_file(straight / "model" / "model.safetensors")
    assert all(torch.equal(shipped[k].float(), teacher[k].float()) for k in shipped)  # the teacher is the model

    interrupted = tmp_path / "interrupted"
    train_interrupted_in_epoch_two_then_resumed(
        lambda: config_from_dict(mean_teacher_config(shapes_root, interrupted, unlabelled_folder, epochs=2)),
        monkeypatch)
    resumed = load_checkpoint(interrupted / "last.pt")
    for key, tensor in state["model"].items():
        assert torch.equal(tensor, resumed["model"][key]), key
    for key, tensor in teacher.items():
        assert torch.equal(tensor, resumed["method"]["teacher"][key]), key


def test_supervised_is_the_default_method_and_keeps_no_state(shapes_root, tmp_path):
    config = config_from_dict(tiny_config(shapes_root, tmp_path / "run", epochs=1))
    assert config.method.name == "supervised" and config.method.options == {}
    train(config, progress=False)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["method"] == {}


def test_unlabelled_images_have_their_valid_pixels(shapes_root, tmp_path):
    from pixelseg.data.transforms import training_transform
    from pixelseg.data.unlabelled import UnlabelledImages

    write_image(tmp_path / "u" / "small.png", np.full((20, 30, 3), 128, np.uint8))
    dataset = UnlabelledImages(tmp_path / "u", num_classes=4,
                               transform=training_transform((32, 32), (1.0, 1.0), flip=False, color_jitter=0))
    image, valid = dataset[0]
    assert image.shape == (3, 32, 32) and valid.sum() == 20 * 30  # the crop's padding is not valid


def test_normalised_entropy_is_zero_when_certain_and_one_when_uniform():
    from pixelseg.engine.methods.adaptation import normalised_entropy

    certain = torch.full((1, 4, 2, 2), -30.0)
    certain[:, 2] = 30.0
    assert normalised_entropy(certain).item() == pytest.approx(0.0, abs=1e-6)
    assert normalised_entropy(torch.zeros(1, 4, 2, 2)).item() == pytest.approx(1.0)
    valid = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    mixed = torch.zeros(1, 4, 2, 2)
    mixed[0, :, 0, 0] = certain[0, :, 0, 0]
    assert normalised_entropy(mixed, valid).item() == pytest.approx(0.0, abs=1e-6)  # only the certain pixel counts


def test_fourier_style_gives_the_source_the_targets_low_frequencies_and_keeps_its_own_high_ones():
    from pixelseg.engine.methods.adaptation import fourier_style

    generator = torch.Generator().manual_seed(0)
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    source_pixels = 0.5 + 0.05 * torch.randn(2, 3, 32, 40, generator=generator)
    target_pixels = torch.tensor([0.3, 0.4, 0.6]).view(1, 3, 1, 1) + 0.05 * torch.randn(1, 3, 32, 40,
                                                                                          generator=generator)
    source, target = (source_pixels - 0.5) / 0.5, (target_pixels - 0.5) / 0.5
    styled = fourier_style(source, target, 0.1, mean, std) * 0.5 + 0.5  # back to pixels
    # the mean colour (the zero frequency) is the target's, for both source images (one target, cycled)
    assert torch.allclose(styled.mean(dim=(2, 3)), target_pixels.mean(dim=(2, 3)).expand(2, 3), atol=1e-4)
    spectrum, original = torch.fft.fft2(styled), torch.fft.fft2(source_pixels)
    assert torch.allclose(spectrum[..., 8:24, 8:32], original[..., 8:24, 8:32], atol=1e-3)  # high frequencies kept
    assert torch.equal(fourier_style(source, target, 0.0, mean, std), source)  # beta 0: off
    same = fourier_style(source, source, 0.1, mean, std)
    assert torch.allclose(same, source, atol=1e-5)  # its own style: unchanged


def test_class_balanced_thresholds_are_each_class_quantile():
    from pixelseg.engine.methods.adaptation import balanced_pseudo_labels, class_balanced_thresholds

    # class 0: confident pixels 0.9 ... 1.0; class 1 (rare, unsure): 0.4 ... 0.5; class 2 never predicted
    confidence = torch.cat([torch.linspace(0.9, 1.0, 11), torch.linspace(0.4, 0.5, 11)])
    predicted = torch.tensor([0] * 11 + [1] * 11)
    thresholds = class_balanced_thresholds(confidence, predicted, 3, portion=0.2)
    assert thresholds[0] == pytest.approx(0.98) and thresholds[1] == pytest.approx(0.48) and thresholds[2] == 1.0
    # one global threshold at 0.9 would keep none of class 1; the class-wise ones keep the top fifth of each
    probabilities = torch.tensor([[0.99, 0.45, 0.2], [0.01, 0.49, 0.3], [0.0, 0.06, 0.5]]).view(1, 3, 1, 3)
    labels = balanced_pseudo_labels(probabilities, thresholds, torch.ones(1, 1, 3, dtype=torch.bool), 255)
    assert labels.tolist() == [[[0, 1, 255]]]


def test_class_balanced_mean_teacher_keeps_the_top_portion_of_each_class():
    """``class_balanced: 0.5``: each class's pixels above its own running median confidence (capped at the fixed
    threshold) become pseudo-labels; the fixed 0.95 keeps none of an unsure class."""
    from pixelseg.engine.methods.semi import MeanTeacher

    method = MeanTeacher.__new__(MeanTeacher)
    method.threshold, method.ema_decay, method.class_balanced = 0.95, 0.5, 0.5
    method.class_thresholds = torch.full((3,), float("nan"))
    # four pixels: class 0 at 0.99 and 0.97 (confident), class 1 at 0.6 and 0.8 (unsure); class 2 never the arg-max
    probabilities = torch.tensor([[0.99, 0.97, 0.3, 0.1], [0.01, 0.02, 0.6, 0.8], [0.0, 0.01, 0.1, 0.1]])
    probabilities, valid = probabilities.view(1, 3, 1, 4), torch.ones(1, 1, 4, dtype=torch.bool)
    assert confident_pseudo_labels(probabilities, 0.95, valid).tolist() == [[[0, 0, 255, 255]]]
    assert method.pseudo_labels(probabilities, valid, 255).tolist() == [[[0, 0, 255, 1]]]
    assert method.class_thresholds[:2].tolist() == pytest.approx([0.98, 0.7]) and method.class_thresholds[2].isnan()
    # a second batch with class 1 at 0.5 and 0.6: its median 0.55 moves the running threshold to 0.625 (decay 0.5)
    second = torch.tensor([[0.3, 0.2], [0.5, 0.6], [0.2, 0.2]]).view(1, 3, 1, 2)
    assert method.pseudo_labels(second, torch.ones(1, 1, 2, dtype=torch.bool), 255).tolist() == [[[255, 255]]]
    assert method.class_thresholds[:2].tolist() == pytest.approx([0.98, 0.625])


def test_separate_strong_keeps_the_strong_views_out_of_the_labelled_batch_statistics():
    """``separate_strong``: the labelled outputs are the network's on the labelled batch alone (train-mode batch
    norm), whatever the strong views; in one shared pass they depend on them."""
    from types import SimpleNamespace

    from pixelseg.engine.methods.semi import MeanTeacher

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 3, 1)).train()
    images, strong = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5) * 4 + 2
    method = MeanTeacher.__new__(MeanTeacher)
    method.run = SimpleNamespace(device=torch.device("cpu"), amp_dtype=None)
    alone = model(images)
    method.separate_strong = True
    labelled, unlabelled = method.student_outputs(model, images, strong)
    assert torch.allclose(labelled, alone, atol=1e-6) and torch.allclose(unlabelled, model(strong), atol=1e-6)
    method.separate_strong = False
    labelled, _ = method.student_outputs(model, images, strong)
    assert not torch.allclose(labelled, alone, atol=1e-3)


def test_class_balanced_mean_teacher_checks_its_portion_and_resumes_its_thresholds(shapes_root, tmp_path,
                                                                                   unlabelled_folder, monkeypatch):
    def config(out, portion=0.5):
        values = mean_teacher_config(shapes_root, out, unlabelled_folder, epochs=2)
        values["method"]["class_balanced"] = portion
        return config_from_dict(values)

    with pytest.raises(ConfigError, match="method.class_balanced: 1.5 must be a portion"):
        train(config(tmp_path / "bad", 1.5), progress=False)
    a, b = straight_and_resumed_runs(config, tmp_path, monkeypatch)
    thresholds = a["method"]["class_thresholds"]
    assert not thresholds.isnan().all() and torch.equal(thresholds.nan_to_num(-1),
                                                        b["method"]["class_thresholds"].nan_to_num(-1))


def test_adaptation_keeps_the_source_loss_away_from_the_target_images():
    """Source and target in separate forward passes: with the target term weighted 0, no gradient reaches the
    target images. One pass over the concatenation fails this (the batch-norm statistics carry the source loss to
    the target images, and on CamVid the network learnt near-uniform predictions on the target street)."""
    from types import SimpleNamespace

    from pixelseg.engine.methods.adaptation import EntropyMinimisation

    class TinyNet(torch.nn.Sequential):
        def training_loss(self, loss_fn, outputs, masks):
            return loss_fn(outputs, masks)

    torch.manual_seed(0)
    model = TinyNet(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 3, 1)).train()
    target = torch.randn(2, 3, 5, 5, requires_grad=True)
    method = EntropyMinimisation.__new__(EntropyMinimisation)
    method.run = SimpleNamespace(device=torch.device("cpu"), amp_dtype=None, loss_fn=torch.nn.CrossEntropyLoss())
    method.weight, method.source_style = 0.0, 0.0
    method.stream = SimpleNamespace(next_batch=lambda: (target, torch.ones(2, 5, 5, dtype=torch.bool)))
    loss = method.batch_loss(model, torch.randn(2, 3, 5, 5) + 3.0, torch.randint(0, 3, (2, 5, 5)))
    loss.backward()
    assert target.grad is not None and torch.count_nonzero(target.grad) == 0


@pytest.mark.parametrize("method", [{"name": "entropy_min", "weight": 0.1},
                                    {"name": "self_training", "portion": 0.5, "round_epochs": 1,
                                     "warmup_epochs": 1, "source_style": 0.1}])
def test_adaptation_methods_train_and_resume_to_the_same_weights(method, shapes_root, tmp_path, unlabelled_folder,
                                                                 monkeypatch):
    def config(out):
        values = mean_teacher_config(shapes_root, out, unlabelled_folder, epochs=2)
        values["method"] = method
        return config_from_dict(values)

    a, b = straight_and_resumed_runs(config, tmp_path, monkeypatch)
    if method["name"] == "self_training":
        assert a["method"]["round"] == 1 and torch.equal(a["method"]["thresholds"], b["method"]["thresholds"])


@pytest.mark.parametrize("unlabelled_loss, calls", [("ce", 1), ("training", 2)])
def test_unlabelled_loss_training_puts_the_runs_own_loss_on_the_pseudo_labels(shapes_root, tmp_path,
                                                                              unlabelled_folder, unlabelled_loss,
                                                                              calls):
    """With ``unlabelled_loss: training`` the config's loss (class weights and Dice included) scores the student on
    the teacher's confident pseudo-labels as well as on the labels: called twice a step, the second time on
    pseudo-labels (ignore where the teacher is unsure); FixMatch's plain cross-entropy leaves it to the labels."""
    config = mean_teacher_config(shapes_root, tmp_path / "run", unlabelled_folder)
    config["method"].update(threshold=0.0, unlabelled_loss=unlabelled_loss)  # every pixel confident
    loss, masks, seen = one_mean_teacher_step(config)
    assert torch.isfinite(loss) and len(seen) == calls
    assert torch.equal(seen[0], masks)
    if calls == 2:
        assert seen[1].shape[-2:] == masks.shape[-2:] and not torch.equal(seen[1], masks)
    config["method"]["unlabelled_loss"] = "dice"
    with pytest.raises(ConfigError, match="method.unlabelled_loss: 'dice' is not one of ce, training"):
        train_module.build_run(config_from_dict(config), progress=False)
