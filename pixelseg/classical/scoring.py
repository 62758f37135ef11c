"""Scoring a classical method like a network: its regions (or levels) are not classes, so each is mapped to a class
first (see :func:`evaluate_method`), then every metric comes from the one confusion matrix."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from pixelseg.classical import LEVEL_METHODS, segment
from pixelseg.data.dataset import SegmentationDataset
from pixelseg.engine.evaluate import Evaluation, _example_indices
from pixelseg.metrics import ConfusionMatrix, metrics_from_confusion
from pixelseg.utils import progress_bar


def region_class_counts(regions: np.ndarray, truth: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    """(regions, classes) counts of the labelled pixels of each region in each ground-truth class."""
    valid = truth != ignore_index
    counts = np.zeros((int(regions.max()) + 1, num_classes), np.int64)
    np.add.at(counts, (regions[valid], truth[valid].astype(np.int64)), 1)
    return counts


def assign_regions(regions: np.ndarray, truth: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    """Each region takes the class most of its labelled pixels have in ``truth`` (regions with none: class 0)."""
    return region_class_counts(regions, truth, num_classes, ignore_index).argmax(1)[regions]


def mapped_confusion(counts: np.ndarray, mapping) -> np.ndarray:
    """The (truth, prediction) confusion matrix when level i of ``counts`` (levels, classes) predicts mapping[i]."""
    classes = counts.shape[1]
    confusion = np.zeros((classes, classes), np.int64)
    for level, target in enumerate(mapping):
        confusion[:, target] += counts[level]
    return confusion


def best_level_mapping(counts: np.ndarray) -> np.ndarray:
    """The map from levels to classes with the highest mIoU, from ``counts`` (levels, classes) of pixels.

    Exhaustive over every map where there are at most 200,000 of them; otherwise each level takes its majority
    class.
    """
    levels, classes = counts.shape
    if classes**levels > 200_000:
        return counts.argmax(1)
    best, best_miou = counts.argmax(1), -1.0
    for mapping in itertools.product(range(classes), repeat=levels):
        miou = metrics_from_confusion(mapped_confusion(counts, mapping))["miou"]
        if miou > best_miou:
            best, best_miou = np.array(mapping), miou
    return best


def evaluate_method(method: str, dataset: SegmentationDataset, options: dict | None = None, progress: bool = True,
                    examples: int = 0) -> Evaluation:
    """Score a classical method (:mod:`pixelseg.classical`) on ``dataset``; its labels are not classes.

    Methods whose labels mean the same in every image (threshold levels, k-means clusters by brightness,
    GrabCut's foreground) get one map from levels to classes for the whole dataset, the one with the highest
    mIoU. Methods that make regions (split-and-merge, region growing, graph-based, superpixels, watershed) have
    each region take the ground-truth class most of its pixels have, image by image: the standard score of an
    over-segmentation and an upper bound on what its regions allow (the more regions, the higher).
    The rule used is in ``Evaluation.metrics["assignment"]``, with the mean number of regions per image.
    """

    classes = dataset.classes
    num_classes, ignore = classes.num_classes, classes.ignore_index
    levels = method in LEVEL_METHODS
    confusion = ConfusionMatrix(num_classes)
    counts = np.zeros((0, num_classes), np.int64)
    keep = _example_indices(len(dataset), examples)
    kept, regions_seen = [], 0
    for index in progress_bar(range(len(dataset)), progress, desc=f"evaluating {method}"):
        image, truth = dataset.read(index)
        regions = segment(method, image, **(options or {}))
        regions_seen += len(np.unique(regions))
        if levels:
            image_counts = region_class_counts(regions, truth, num_classes, ignore)
            if len(image_counts) > len(counts):  # a level not seen in the images before
                counts = np.pad(counts, ((0, len(image_counts) - len(counts)), (0, 0)))
            counts[: len(image_counts)] += image_counts
            predicted = regions
        else:
            predicted = assign_regions(regions, truth, num_classes, ignore)
            confusion.update(torch.from_numpy(predicted), torch.from_numpy(truth.astype(np.int64)))
        if index in keep:
            kept.append((image, truth, predicted))
    if levels:
        mapping = best_level_mapping(counts)
        matrix = mapped_confusion(counts, mapping)
        metrics = metrics_from_confusion(matrix)
        kept = [(image, truth, mapping[predicted]) for image, truth, predicted in kept]
        assignment = f"one map from levels to classes for the whole dataset (best mIoU): {mapping.tolist()}"
    else:
        matrix, metrics = confusion.matrix.cpu().numpy(), confusion.compute()
        assignment = "each region takes its majority ground-truth class, per image (an upper bound)"
    metrics = {**metrics, "assignment": assignment, "regions_per_image": regions_seen / max(1, len(dataset))}
    return Evaluation(metrics, matrix, classes.names, kept)
