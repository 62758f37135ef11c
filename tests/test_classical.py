"""Classical segmenters on images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pixelseg import classical
from pixelseg.classical.scoring import assign_regions
from pixelseg.cli.main import METHOD_NAMES
from pixelseg.errors import ConfigError


def squares(noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 64x96 image: dark background (40), a bright square (200) and a mid-grey square (120); its truth 0/1/2."""
    truth = np.zeros((64, 96), np.int64)
    truth[8:40, 8:40] = 1
    truth[24:56, 56:88] = 2
    grey = np.choose(truth, [40.0, 200.0, 120.0])
    grey = grey + np.random.default_rng(seed).normal(0, noise, grey.shape)
    image = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, 2)
    return image, truth


def same_partition(labels: np.ndarray, truth: np.ndarray) -> bool:
    """The regions are the truth's regions, whatever their numbers."""
    pairs = set(zip(labels.ravel().tolist(), truth.ravel().tolist(), strict=True))
    return len(pairs) == len(np.unique(labels)) == len(np.unique(truth))


def test_the_cli_lists_every_method():
    assert tuple(classical.METHODS) == METHOD_NAMES


def test_thresholds():
    image, truth = squares(noise=5)
    assert (classical.otsu(image) == (truth > 0)).mean() > 0.99
    assert same_partition(classical.multi_otsu(image, classes=3), np.choose(truth, [0, 2, 1]))
    # Uneven light: small spots 40 levels above a background that ramps from 0 to 200. A global threshold cannot
    # separate them; a local one can.
    grey = np.tile(np.linspace(0, 200, 96), (64, 1))
    spots = np.zeros((64, 96), bool)
    for row in range(8, 64, 16):
        spots[row:row + 4, 4::12] = True
        spots[row:row + 4, 5::12] = True
    grey[spots] += 40
    lit = np.repeat(grey.astype(np.uint8)[..., None], 3, 2)
    assert (classical.adaptive(lit, block_size=15, offset=-10) == spots).mean() > 0.97
    assert (classical.otsu(lit) == spots).mean() < 0.8
    assert (classical.otsu(np.full((8, 8, 3), 7, np.uint8)) == 0).all()  # a flat image is one region


def test_split_and_merge_recovers_the_squares_exactly():
    image, truth = squares()
    labels = classical.split_and_merge(image, max_variance=10.0, min_size=1)
    assert same_partition(labels, truth)
    assert same_partition(classical.split_and_merge(image, max_variance=10.0, min_size=1, colour=True), truth)


def test_split_and_merge_with_noise_keeps_the_squares_apart():
    image, truth = squares(noise=4, seed=1)
    labels = classical.split_and_merge(image, max_variance=60.0, min_size=2)
    assert (assign_regions(labels, truth, 3, 255) == truth).mean() > 0.97
    assert len(np.unique(labels)) < 40


def test_region_growing_from_one_seed_per_square():
    image, truth = squares(noise=3)
    labels = classical.region_growing(image, seeds=[(2, 2), (20, 20), (40, 70)])
    assert (labels == truth).mean() > 0.99
    limited = classical.region_growing(image, seeds=[(20, 20)], tolerance=30)
    assert ((limited == 0) == (truth == 1)).mean() > 0.99 and (limited[truth != 1] == -1).all()
    with pytest.raises(ValueError, match="outside"):
        classical.region_growing(image, seeds=[(100, 0)])


def test_kmeans_felzenszwalb_slic_watershed():
    image, truth = squares(noise=3)
    assert same_partition(classical.kmeans(image, clusters=3), np.choose(truth, [0, 2, 1]))
    assert (assign_regions(classical.felzenszwalb(image, scale=200, min_size=20), truth, 3, 255) == truth).mean() > 0.98
    superpixels = classical.slic(image, segments=60)
    assert 20 < len(np.unique(superpixels)) < 120
    assert (assign_regions(superpixels, truth, 3, 255) == truth).mean() > 0.95
    assert (assign_regions(classical.watershed(image), truth, 3, 255) == truth).mean() > 0.95


def test_grabcut_with_a_box_scribbles_and_downscaling():
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(60, 10, (120, 160, 3)), 0, 255).astype(np.uint8)
    truth = np.zeros((120, 160), np.int64)
    truth[30:90, 50:120] = 1
    image[truth == 1] = np.clip(rng.normal(190, 10, (int(truth.sum()), 3)), 0, 255).astype(np.uint8)
    assert (classical.grabcut(image, box=(40, 20, 130, 100)) == truth).mean() > 0.98
    assert (classical.grabcut(image, box=(40, 20, 130, 100), max_side=64) == truth).mean() > 0.95
    scribble = np.zeros_like(truth, bool)
    scribble[55:65, 80:90] = True
    background = np.zeros_like(truth, bool)
    background[:5] = True
    assert (classical.grabcut(image, foreground=scribble, background=background) == truth).mean() > 0.95
    with pytest.raises(ValueError, match="empty"):
        classical.grabcut(image, box=(10, 10, 10, 50))


def test_segment_reports_bad_names_and_options():
    image, _ = squares()
    with pytest.raises(ConfigError, match="did you mean 'otsu'"):
        classical.segment("otsy", image)
    with pytest.raises(ConfigError, match="slic"):
        classical.segment("slic", image, segmnts=5)


def test_evaluation_maps_levels_once_per_dataset_and_regions_per_image(tmp_path):
    from pixelseg.classical.scoring import best_level_mapping, evaluate_method
    from pixelseg.data import open_dataset

    # Levels 0..2 against 2 classes: the best-mIoU map sends level 0 to class 1 and levels 1, 2 to class 0.
    counts = np.array([[5, 90], [300, 10], [200, 5]])
    assert best_level_mapping(counts).tolist() == [1, 0, 0]

    # Dark squares on a bright background, class 1 = square: Otsu's level 0 (dark) must become class 1.
    from PIL import Image

    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "masks" / split).mkdir(parents=True)
    for number in range(3):
        image, truth = squares(noise=3, seed=number)
        dark = 255 - image
        Image.fromarray(dark).save(tmp_path / "images" / "val" / f"{number}.png")
        Image.fromarray((truth > 0).astype(np.uint8)).save(tmp_path / "masks" / "val" / f"{number}.png")
    dataset = open_dataset("folder", tmp_path, "val", num_classes=2)
    result = evaluate_method("otsu", dataset, progress=False, examples=1)
    assert result.metrics["pixel_accuracy"] > 0.99 and "[1, 0]" in result.metrics["assignment"]
    assert result.examples[0][2].max() == 1
    regions = evaluate_method("slic", dataset, {"segments": 40}, progress=False)
    assert "per image" in regions.metrics["assignment"] and regions.metrics["regions_per_image"] > 10
