import numpy as np
import pytest
import torch

from pixelseg.data.transforms import (
    ColorJitter,
    HorizontalFlip,
    RandomCrop,
    RandomRotate90,
    RandomScale,
    ToTensor,
    denormalise,
    normalise,
    renormalise,
    training_transform,
)


def striped_pair(height=40, width=60):
    """A mask of vertical stripes (labels 0..4) and an image whose red channel encodes the label."""
    mask = ((np.arange(width) // 12) % 5).astype(np.uint8)[None, :].repeat(height, 0)
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = mask * 40
    return image, mask


@pytest.mark.parametrize("seed", range(20))
def test_augmentation_never_invents_labels(seed):
    image, mask = striped_pair()
    mask[5:9, 5:9] = 255
    transform = training_transform((48, 48), scale_range=(0.3, 2.5))
    _, out = transform(image, mask, np.random.default_rng(seed))
    assert set(np.unique(out.numpy())) <= set(np.unique(mask)) | {255}


def test_crop_pads_image_with_fill_and_mask_with_ignore():
    image, mask = striped_pair(10, 10)
    out_image, out_mask = RandomCrop((16, 20), fill=(1, 2, 3))(image, mask, np.random.default_rng(0))
    assert out_image.shape == (16, 20, 3) and out_mask.shape == (16, 20)
    assert (out_mask[10:] == 255).all() and (out_mask[:, 10:] == 255).all()
    assert (out_image[12, 15] == [1, 2, 3]).all()


def test_class_uniform_crop_centres_rare_classes_as_often_as_common_ones():
    mask = np.zeros((100, 100), np.uint8)
    mask[90:94, 90:94] = 1  # a rare class, 16 of 10,000 pixels, in a corner
    mask[0:3] = 255
    image = np.zeros((100, 100, 3), np.uint8)
    rng = np.random.default_rng(0)
    uniform = sum(int((RandomCrop((20, 20))(image, mask, rng)[1] == 1).any()) for _ in range(400))
    balanced = sum(int((RandomCrop((20, 20), class_uniform=1.0)(image, mask, rng)[1] == 1).any()) for _ in range(400))
    assert uniform < 40 and 160 < balanced < 240  # about 2 % of uniform crops; half of class-uniform ones
    out_image, out_mask = RandomCrop((20, 20), class_uniform=1.0)(image, np.full((100, 100), 255, np.uint8), rng)
    assert out_mask.shape == (20, 20)  # nothing labelled: a uniform crop


def test_flip_moves_image_and_mask_together():
    image, mask = striped_pair()
    for seed in range(10):
        out_image, out_mask = HorizontalFlip(0.5)(image, mask, np.random.default_rng(seed))
        assert (out_image[..., 0] == out_mask * 40).all()


def test_rotate90_turns_image_and_mask_together_and_draws_each_turn():
    image, mask = striped_pair(40, 60)
    image[..., 1] = np.arange(40, dtype=np.uint8)[:, None]  # green encodes the row: tells the four turns apart
    seen = {}
    rng = np.random.default_rng(0)
    for _ in range(400):
        out_image, out_mask = RandomRotate90()(image, mask, rng)
        assert (out_image[..., 0] == out_mask * 40).all() and out_image.flags.c_contiguous
        turn = next(k for k in range(4) if np.array_equal(out_image, np.rot90(image, k)))
        seen[turn] = seen.get(turn, 0) + 1
    assert sorted(seen) == [0, 1, 2, 3] and all(70 < count < 130 for count in seen.values())


def test_rotate90_before_the_crop_keeps_a_non_square_crop_size():
    image, mask = striped_pair(40, 90)
    transform = training_transform((32, 48), scale_range=(1.0, 1.0), rotate90=True)
    shapes = {transform(image, mask, np.random.default_rng(seed))[1].shape for seed in range(12)}
    assert shapes == {(32, 48)}
    assert not any(isinstance(step, RandomRotate90) for step in training_transform((32, 32)).transforms)


def test_scale_resizes_masks_with_nearest_neighbour():
    image, mask = striped_pair()
    out_image, out_mask = RandomScale((1.7, 1.7))(image, mask, np.random.default_rng(0))
    assert out_mask.shape == out_image.shape[:2] == (68, 102)
    assert set(np.unique(out_mask)) <= set(np.unique(mask))


def test_same_generator_seed_gives_same_sample():
    image, mask = striped_pair()
    transform = training_transform((32, 32))
    first = transform(image, mask, np.random.default_rng([0, 3, 7]))
    second = transform(image, mask, np.random.default_rng([0, 3, 7]))
    assert (first[0] == second[0]).all() and (first[1] == second[1]).all()


def test_color_jitter_leaves_mask_alone():
    image, mask = striped_pair()
    _, out_mask = ColorJitter()(image, mask, np.random.default_rng(0))
    assert out_mask is mask


def test_to_tensor_normalises():
    image = np.full((2, 2, 3), 255, np.uint8)
    tensor, mask = ToTensor(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))(image, np.zeros((2, 2), np.uint8))
    assert tensor.shape == (3, 2, 2) and float(tensor.min()) == pytest.approx(1.0)
    assert mask.dtype.is_floating_point is False


def test_renormalise_inverts_denormalise_and_matches_normalise():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    normalised = normalise(image, mean, std)[None]
    pixels = denormalise(normalised, mean, std)
    assert torch.allclose(pixels[0], torch.from_numpy(image).permute(2, 0, 1).float() / 255, atol=1e-6)
    assert torch.allclose(renormalise(pixels, mean, std), normalised, atol=1e-6)
