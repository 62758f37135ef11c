"""Property-based tests (hypothesis) for metrics, losses and joint augmentation."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pixelseg.data.classes import IGNORE_INDEX
from pixelseg.data.transforms import training_transform
from pixelseg.losses import build_loss
from pixelseg.metrics import ConfusionMatrix

NUM_CLASSES = 4
label_maps = arrays(np.int64, st.tuples(st.integers(1, 12), st.integers(1, 12)),
                    elements=st.sampled_from([0, 1, 2, 3, IGNORE_INDEX]))


@st.composite
def prediction_pairs(draw):
    """A list of (prediction, labels) images of random sizes, predictions within the classes."""
    pairs = []
    for _ in range(draw(st.integers(1, 5))):
        labels = draw(label_maps)
        predictions = draw(arrays(np.int64, labels.shape, elements=st.integers(0, NUM_CLASSES - 1)))
        pairs.append((predictions, labels))
    return pairs


def confusion_of(pairs) -> np.ndarray:
    matrix = ConfusionMatrix(NUM_CLASSES)
    for predictions, labels in pairs:
        matrix.update(torch.from_numpy(predictions), torch.from_numpy(labels))
    return matrix.matrix.numpy()


@settings(max_examples=60, deadline=None)
@given(prediction_pairs(), st.randoms(use_true_random=False))
def test_metrics_do_not_depend_on_the_order_of_images(pairs, random):
    shuffled = list(pairs)
    random.shuffle(shuffled)
    assert np.array_equal(confusion_of(pairs), confusion_of(shuffled))
    # The ignore index never counts, every other pixel counts once.
    assert confusion_of(pairs).sum() == sum(int((labels != IGNORE_INDEX).sum()) for _, labels in pairs)


@settings(max_examples=60, deadline=None)
@given(prediction_pairs())
def test_metrics_stay_in_range(pairs):
    matrix = ConfusionMatrix(NUM_CLASSES)
    for predictions, labels in pairs:
        matrix.update(torch.from_numpy(predictions), torch.from_numpy(labels))
    metrics = matrix.compute()
    for key in ("pixel_accuracy", "miou", "fwiou", "mean_class_accuracy"):
        value = metrics[key]
        assert value is None or np.isnan(value) or 0.0 <= value <= 1.0


class FlipEquivariant(torch.nn.Module):
    """Per-pixel logits from a 1x1 convolution: flipping the input flips the output."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, NUM_CLASSES, 1)

    def forward(self, x):
        return self.conv(x)


@settings(max_examples=40, deadline=None)
@given(label_maps, st.integers(0, 2**31 - 1), st.sampled_from([{"ce": 1.0}, {"focal": 1.0}, {"dice": 1.0},
                                                              {"ce": 1.0, "dice": 0.5}]))
def test_flipping_image_and_mask_together_leaves_the_loss_unchanged(labels, seed, weights):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(1, 3, *labels.shape, generator=generator)
    masks = torch.from_numpy(labels).unsqueeze(0)
    model, loss_fn = FlipEquivariant(), build_loss(weights, None, IGNORE_INDEX)
    if not (masks != IGNORE_INDEX).any():
        return
    straight = loss_fn(model(images), masks)
    flipped = loss_fn(model(images.flip(-1)), masks.flip(-1))
    assert torch.allclose(straight, flipped, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(4, 40), st.integers(4, 40)), elements=st.sampled_from([0, 2, 5, 255])),
       st.integers(0, 2**31 - 1))
def test_augmentation_never_invents_labels(mask, seed):
    image = np.random.default_rng(seed).integers(0, 255, (*mask.shape, 3), dtype=np.uint8)
    transform = training_transform((24, 24), scale_range=(0.5, 2.0))
    _, augmented = transform(image, mask.astype(np.uint8), np.random.default_rng(seed))
    allowed = set(np.unique(mask).tolist()) | {IGNORE_INDEX}
    assert set(np.unique(augmented.numpy()).tolist()) <= allowed
    assert augmented.shape == (24, 24)
