"""Evaluation at full resolution: one confusion matrix over a whole split, then every metric from it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pixelseg.crf import DenseCRF
from pixelseg.data.classes import ClassInfo
from pixelseg.data.dataset import SegmentationDataset
from pixelseg.data.transforms import evaluation_transform
from pixelseg.engine import distributed
from pixelseg.engine.inference import model_device, predict_logits
from pixelseg.io import write_text
from pixelseg.metrics import ConfusionMatrix, metrics_from_confusion
from pixelseg.models.base import SegmentationModel
from pixelseg.utils import progress_bar
from pixelseg.visualize import plot_class_iou, plot_confusion, plot_examples


@dataclass
class Evaluation:
    metrics: dict
    confusion: np.ndarray
    class_names: list[str]
    examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def table(self) -> str:
        """Per-class IoU and accuracy, then the summary metrics, as aligned text."""
        width = max(12, *(len(name) for name in self.class_names))
        lines = [f"{'class':<{width}} {'IoU':>7} {'acc':>7} {'Dice':>7} {'pixels':>12}"]
        for index, name in enumerate(self.class_names):
            iou, accuracy, dice = (self.metrics[key][index] for key in ("iou", "class_accuracy", "dice"))
            lines.append(f"{name:<{width}} {_percent(iou)} {_percent(accuracy)} {_percent(dice)} "
                         f"{self.metrics['pixels'][index]:>12,}")
        lines.append("")
        for key, label in (("miou", "mIoU"), ("pixel_accuracy", "pixel accuracy"),
                           ("mean_class_accuracy", "mean class accuracy"), ("fwiou", "frequency-weighted IoU"),
                           ("mean_dice", "mean Dice")):
            lines.append(f"{label:<24} {_percent(self.metrics[key])}")
        return "\n".join(lines)

    def save(self, directory: str | Path, classes: ClassInfo, extra: dict | None = None) -> dict[str, Path]:
        """Write ``metrics.json``, ``confusion.png``, ``class_iou.png`` (and ``examples.png``) into ``directory``."""
        directory = Path(directory)
        paths = {"metrics": directory / "metrics.json", "confusion": directory / "confusion.png",
                 "class_iou": directory / "class_iou.png"}
        document = {**(extra or {}), "classes": self.class_names, **self.metrics,
                    "confusion_matrix": self.confusion.tolist()}
        write_text(paths["metrics"], json.dumps(_json_safe(document), indent=2))
        plot_confusion(self.confusion, self.class_names, paths["confusion"])
        plot_class_iou(self.metrics["iou"], self.class_names, paths["class_iou"], classes.palette)
        if self.examples:
            paths["examples"] = directory / "examples.png"
            plot_examples(self.examples, classes, paths["examples"])
        return paths


def _percent(value: float) -> str:
    return f"{'-':>7}" if value is None or np.isnan(value) else f"{100 * value:>6.2f}%"


def _json_safe(value):
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _example_indices(length: int, examples: int) -> set[int]:
    return set(np.linspace(0, length - 1, examples).round().astype(int).tolist()) if examples and length else set()


def evaluate(model: SegmentationModel, dataset: SegmentationDataset, scale: float | None = None,
             tile: tuple[int, int] | None = None, overlap: float = 0.33, progress: bool = True,
             workers: int = 0, examples: int = 0, crf: DenseCRF | None = None, flip: bool = False,
             scales: Sequence[float] = (1.0,)) -> Evaluation:
    """Predict every image of ``dataset`` at full resolution and score it against its mask.

    ``examples``: keep (image, truth, prediction) for that many images, spread over the dataset, for a picture.
    ``crf``: refine each image's probabilities with a dense CRF before scoring. ``flip``, ``scales``: test-time
    augmentation (see :func:`predict_logits`).
    """
    model.eval()
    device = model_device(model)
    scale = model.meta.get("inference_scale", 1.0) if scale is None else scale
    previous = dataset.transform
    dataset.transform = evaluation_transform(model.meta["mean"], model.meta["std"])
    confusion = ConfusionMatrix(model.classes.num_classes, device=device)
    # Under torchrun each rank scores every world_size-th image; the confusion matrices are then summed.
    context = distributed.current()
    indices = list(range(context.rank, len(dataset), context.world_size))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=1,
                                         num_workers=workers)
    keep = _example_indices(len(dataset), examples)
    kept = []
    try:
        for index, (image, mask) in zip(indices, progress_bar(loader, progress and context.is_main,
                                                                desc="evaluating"), strict=True):
            logits = predict_logits(model, image.to(device), scale, tile, overlap, flip, scales)
            # The loader gives the normalised tensor; the CRF and the example picture need the RGB image.
            rgb = dataset.read_image(index) if crf is not None or index in keep else None
            if crf is not None:
                logits = crf(rgb, logits[0].softmax(0)).unsqueeze(0)
            predicted = logits.argmax(dim=1)
            confusion.update(predicted, mask.to(device))
            if index in keep:
                kept.append((rgb, mask[0].numpy(), predicted[0].cpu().numpy()))
    finally:
        dataset.transform = previous
    distributed.sum_across_ranks(confusion.matrix)
    return Evaluation(confusion.compute(), confusion.matrix.cpu().numpy(), model.classes.names, kept)


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
    from pixelseg.classical import LEVEL_METHODS, segment

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
