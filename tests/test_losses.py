import pytest
import torch
import torch.nn.functional as F

from pixelseg.errors import ConfigError
from pixelseg.losses import (
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    OhemCrossEntropyLoss,
    build_loss,
    class_weights_from_counts,
)


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=generator)
    labels = torch.randint(0, 4, (2, 8, 8), generator=generator)
    labels[:, :2] = 255
    return logits, labels


def test_cross_entropy_ignores_ignored_pixels(batch):
    logits, labels = batch
    loss = CrossEntropyLoss()
    changed = logits.clone()
    changed[:, :, :2] = 100 * torch.randn_like(changed[:, :, :2])
    assert loss(logits, labels) == pytest.approx(loss(changed, labels).item())


def test_cross_entropy_class_weights_match_weighted_definition(batch):
    logits, labels = batch
    weights = [1.0, 2.0, 0.5, 3.0]
    valid = labels != 255
    per_pixel = F.cross_entropy(logits, labels.clamp(max=3), reduction="none")
    w = torch.tensor(weights)[labels.clamp(max=3)]
    expected = (per_pixel * w)[valid].sum() / w[valid].sum()
    assert CrossEntropyLoss(weights)(logits, labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_focal_with_gamma_zero_is_cross_entropy_and_smaller_otherwise(batch):
    logits, labels = batch
    assert FocalLoss(gamma=0)(logits, labels).item() == pytest.approx(CrossEntropyLoss()(logits, labels).item(),
                                                                      rel=1e-5)
    assert FocalLoss(gamma=2)(logits, labels) < CrossEntropyLoss()(logits, labels)


def test_dice_is_zero_for_perfect_and_near_one_for_wrong_predictions():
    labels = torch.tensor([[[0, 1], [2, 255]]])
    perfect = F.one_hot(labels.clamp(max=2), 3).permute(0, 3, 1, 2).float() * 50
    assert DiceLoss(smooth=0)(perfect, labels).item() == pytest.approx(0.0, abs=1e-6)
    wrong = perfect.roll(1, dims=1)
    assert DiceLoss(smooth=0)(wrong, labels).item() == pytest.approx(1.0, abs=1e-6)


def test_all_ignored_batch_gives_zero_with_gradient():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    labels = torch.full((1, 4, 4), 255)
    for loss in (CrossEntropyLoss(), FocalLoss(), DiceLoss()):
        value = loss(logits, labels)
        value.backward()
        assert value.item() == 0.0


def test_combined_loss_is_the_weighted_sum(batch):
    logits, labels = batch
    combined = build_loss({"ce": 1.0, "dice": 0.5, "focal": 0.0})
    expected = CrossEntropyLoss()(logits, labels) + 0.5 * DiceLoss()(logits, labels)
    assert combined(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(combined.parts) == {"ce", "dice"}


def test_unknown_loss_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'dice'"):
        build_loss({"dise": 1.0})


def test_class_weights_from_counts():
    counts = [1000, 100, 10, 0]
    median = class_weights_from_counts(counts, "median_frequency")
    assert median[3] == 0 and median[0] < median[1] < median[2]
    assert median[1] == pytest.approx(1.0)  # the median class gets weight 1
    enet = class_weights_from_counts(counts, "enet")
    assert enet[0] < enet[1] < enet[2] <= 1 / 0.0198


def test_auxiliary_head_loss_is_added_with_the_model_weight(batch):
    from pixelseg.models import SegmentationModel

    logits, labels = batch
    aux = logits.flip(1)
    loss = CrossEntropyLoss()
    model = SegmentationModel()
    model.aux_weight = 0.4
    combined = model.training_loss(loss, (logits, aux), labels)
    assert combined.item() == pytest.approx((loss(logits, labels) + 0.4 * loss(aux, labels)).item(), rel=1e-6)
    assert model.training_loss(loss, logits, labels).item() == pytest.approx(loss(logits, labels).item())


def test_lovasz_softmax_equals_one_minus_iou_on_hard_predictions():
    """The Lovász extension agrees with the Jaccard loss on the vertices: one-hot probabilities give
    mean over the classes present in the labels of 1 - IoU_c (Berman et al. 2018)."""
    from pixelseg.losses import LovaszSoftmaxLoss

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (2, 9, 11), generator=generator)
    labels[0, 0, :5] = 255  # ignored
    predicted = torch.randint(0, 4, (2, 9, 11), generator=generator)
    logits = torch.nn.functional.one_hot(predicted, 4).permute(0, 3, 1, 2).float() * 60.0  # softmax = one-hot
    valid = labels != 255
    expected = []
    for c in torch.unique(labels[valid]).tolist():
        truth, guess = (labels == c) & valid, (predicted == c) & valid
        expected.append(1 - (truth & guess).sum() / (truth | guess).sum())
    assert LovaszSoftmaxLoss()(logits, labels).item() == pytest.approx(torch.stack(expected).mean().item(), abs=1e-6)
    perfect = torch.nn.functional.one_hot(labels.clamp(max=3), 4).permute(0, 3, 1, 2).float() * 60.0
    assert LovaszSoftmaxLoss()(perfect, labels).item() == pytest.approx(0.0, abs=1e-6)
    soft = torch.randn(2, 4, 9, 11, requires_grad=True)
    LovaszSoftmaxLoss()(soft, labels).backward()
    assert soft.grad.abs().sum() > 0


def test_a_registered_loss_is_usable_from_the_config_in_one_place(monkeypatch):
    from pixelseg import losses
    from pixelseg.engine.config import config_from_dict

    monkeypatch.setattr(losses, "LOSSES", dict(losses.LOSSES))

    @losses.register_loss("scaled_ce")
    def scaled_ce(class_weights=None, ignore_index=255, scale: float = 1.0):
        """Cross-entropy times a constant."""
        inner = losses.CrossEntropyLoss(class_weights, ignore_index)
        return type("Scaled", (torch.nn.Module,), {"forward": lambda self, x, y: scale * inner(x, y)})()

    config = config_from_dict({"model": {"name": "unet"}, "loss": {"ce": 0, "scaled_ce": 1.0, "scaled_ce_scale": 3}})
    loss = build_loss(config.loss.weights, None, 255, options=config.loss.options)
    logits, labels = torch.randn(1, 3, 4, 5), torch.randint(0, 3, (1, 4, 5))
    assert loss(logits, labels).item() == pytest.approx(3 * F.cross_entropy(logits, labels).item(), rel=1e-5)


def test_squared_dice_is_vnets_form():
    from pixelseg.losses import DiceLoss

    torch.manual_seed(0)
    logits, labels = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    p = torch.softmax(logits, dim=1)
    g = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    dims = (0, 2, 3)
    vnet = 1 - (2 * (p * g).sum(dims) + 1) / ((p * p).sum(dims) + (g * g).sum(dims) + 1)
    assert torch.allclose(DiceLoss(squared=True)(logits, labels), vnet.mean())
    assert not torch.allclose(DiceLoss()(logits, labels), vnet.mean())


def test_ohem_keeps_only_the_hard_pixels(batch):
    logits, labels = batch
    weights = [1.0, 2.0, 0.5, 3.0]
    safe = labels.clamp(max=3)
    valid = labels != 255
    probability = F.softmax(logits, 1).gather(1, safe.unsqueeze(1)).squeeze(1)
    hard = valid & (probability < 0.5)
    assert 0 < int(hard.sum()) < int(valid.sum())
    per_pixel = F.cross_entropy(logits, safe, reduction="none")
    w = torch.tensor(weights)[safe]
    expected = (per_pixel * w)[hard].sum() / w[hard].sum()
    loss = OhemCrossEntropyLoss(weights, threshold=0.5, min_kept=0.0)
    assert loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-5)
    # everything is hard below a threshold of 1: plain (weighted) cross-entropy
    assert OhemCrossEntropyLoss(weights, threshold=1.0)(logits, labels).item() == pytest.approx(
        CrossEntropyLoss(weights)(logits, labels).item(), rel=1e-5)


def test_ohem_keeps_min_kept_of_the_least_likely_pixels_when_few_are_hard(batch):
    logits, labels = batch
    valid = labels != 255
    confident = F.one_hot(labels.clamp(max=3), 4).permute(0, 3, 1, 2).float() * 20  # every pixel easy
    confident[0, :, 4, 4] = 0  # but one, whose label probability is 1/4
    value = OhemCrossEntropyLoss(threshold=0.7, min_kept=1 / int(valid.sum()))(confident, labels)
    assert value.item() == pytest.approx(float(torch.log(torch.tensor(4.0))), rel=1e-5)
    kept_half = OhemCrossEntropyLoss(threshold=0.7, min_kept=0.5)(confident, labels)
    assert 0 < kept_half.item() < value.item()


def test_ohem_is_configured_by_name_with_its_options():
    loss = build_loss({"ce": 0, "ohem": 1.0}, options={"ohem": {"threshold": 0.6, "min_kept": 0.2}})
    part = loss.losses["ohem"]
    assert isinstance(part, OhemCrossEntropyLoss) and (part.threshold, part.min_kept) == (0.6, 0.2)
    with pytest.raises(ValueError, match="threshold"):
        OhemCrossEntropyLoss(threshold=0.0)


def test_label_smoothing_mixes_the_target_with_the_uniform_distribution(batch):
    """``loss.ce_label_smoothing: e``: the target is (1 - e) one-hot + e / C, so the loss is (1 - e) CE + e times the
    mean over classes of -log p, on the labelled pixels."""
    from pixelseg.engine.config import load_config

    logits, labels = batch
    config = load_config(None, ["model.name=unet", "loss.ce_label_smoothing=0.2"])
    loss = build_loss(config.loss.weights, options=config.loss.options)
    valid = labels != 255
    log_p = logits.log_softmax(dim=1).permute(0, 2, 3, 1)[valid]  # (pixels, classes)
    target = labels[valid]
    expected = (0.8 * -log_p[torch.arange(len(target)), target] + 0.2 * -log_p.mean(dim=1)).mean()
    assert loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="loss.ce_label_smoothing: 1.0 must be at least 0 and below 1"):
        build_loss({"ce": 1.0}, options={"ce": {"label_smoothing": 1.0}})
