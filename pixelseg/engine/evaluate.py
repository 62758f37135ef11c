"""Evaluation at full resolution: one confusion matrix over a whole split, then every metric from it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from pixelseg.crf import DenseCRF
from pixelseg.data.classes import ClassInfo
from pixelseg.data.dataset import SegmentationDataset
from pixelseg.data.transforms import evaluation_transform
from pixelseg.engine import distributed
from pixelseg.errors import ConfigError
from pixelseg.inference import inference_scale, model_device, predict_logits
from pixelseg.io import rgb_view, write_text
from pixelseg.metrics import BoundaryF1, ConfusionMatrix
from pixelseg.utils import progress_bar
from pixelseg.visualize import plot_class_iou, plot_confusion, plot_examples

if TYPE_CHECKING:
    from pixelseg.models.base import SegmentationModel


@dataclass
class Evaluation:
    metrics: dict
    confusion: np.ndarray
    class_names: list[str]
    examples: list[tuple] = field(default_factory=list)  # (image, truth, prediction[, caption])

    def table(self) -> str:
        """Per-class IoU and accuracy, then the summary metrics, as aligned text."""
        width = max(12, *(len(name) for name in self.class_names))
        boundary = self.metrics.get("boundary_f1_per_class")
        columns = ["IoU", "recall", "prec.", "F1/Dice", *(["BF"] if boundary else [])]
        lines = [f"{'class':<{width}} {' '.join(f'{c:>7}' for c in columns)} {'pixels':>12}"]
        for index, name in enumerate(self.class_names):
            values = [self.metrics[key][index] for key in ("iou", "class_accuracy", "precision", "dice")]
            values += [boundary[index]] if boundary else []
            lines.append(f"{name:<{width}} {' '.join(_percent(v) for v in values)} "
                         f"{self.metrics['pixels'][index]:>12,}")
        lines.append("")
        for key, label in (("miou", "mIoU"), ("pixel_accuracy", "pixel accuracy"),
                           ("mean_class_accuracy", "mean class accuracy (recall)"),
                           ("mean_precision", "mean precision"), ("fwiou", "frequency-weighted IoU"),
                           ("mean_dice", "mean Dice (F1)"), ("boundary_f1", "boundary F1 (BF score)")):
            if key in self.metrics:
                lines.append(f"{label:<28} {_percent(self.metrics[key])}")
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


EXAMPLE_CHOICES = ("spread", "score")


class ExamplePicker:
    """Which images ``examples.png`` shows: ``spread``, that many spread evenly over the split; ``score``, the best
    half and the worst half by the image's own mIoU (its successes and failures), best first, each captioned."""

    def __init__(self, length: int, count: int, by: str = "spread") -> None:
        if by not in EXAMPLE_CHOICES:
            raise ConfigError(f"examples_by must be one of {', '.join(EXAMPLE_CHOICES)}, got {by!r}")
        self.by, self.worst_count, self.best_count = by, count // 2, count - count // 2
        self.spread = _example_indices(length, count) if by == "spread" else set()
        self.kept: list[tuple] = []
        self.ranked: list[tuple[float, int, tuple]] = []  # (score, index, example), at most count of them

    def offer(self, index: int, predicted: np.ndarray, truth: np.ndarray, num_classes: int, read) -> None:
        """Consider one scored image; ``read()`` gives its RGB picture (read only for an image that is kept)."""
        if self.by == "spread":
            if index in self.spread:
                self.kept.append((read(), truth, predicted))
            return
        if not self.best_count:
            return
        confusion = ConfusionMatrix(num_classes)
        confusion.update(torch.from_numpy(predicted), torch.from_numpy(truth))
        score = confusion.compute()["miou"]
        if np.isnan(score):
            return
        total = self.best_count + self.worst_count
        if len(self.ranked) == total:  # the list is full: skip an image that would land between the two groups
            low = self.ranked[self.worst_count - 1][0] if self.worst_count else -np.inf
            if low <= score <= self.ranked[self.worst_count][0]:
                return
        self.ranked.append((score, index, (read(), truth, predicted)))
        self.ranked.sort(key=lambda entry: entry[0])
        if len(self.ranked) > total:
            del self.ranked[self.worst_count]  # the one between the worst and the best groups

    def examples(self, names: list[str]) -> list[tuple]:
        if self.by == "spread":
            return self.kept
        worst = self.ranked[: min(self.worst_count, max(len(self.ranked) - self.best_count, 0))]
        best = self.ranked[len(worst):][::-1]
        return [(*example, f"{kind}: {names[index]}, mIoU {100 * score:.1f} %")
                for kind, group in (("best", best), ("worst", worst)) for score, index, example in group]


def evaluate(model: SegmentationModel, dataset: SegmentationDataset, scale: float | None = None,
             tile: tuple[int, int] | None = None, overlap: float = 0.33, progress: bool = True,
             workers: int = 0, examples: int = 0, crf: DenseCRF | None = None, flip: bool = False,
             scales: Sequence[float] = (1.0,), boundary: bool = False, examples_by: str = "spread") -> Evaluation:
    """Predict every image of ``dataset`` at full resolution and score it against its mask.

    ``boundary``: also the boundary F1 score (:class:`pixelseg.metrics.BoundaryF1`, one process only).

    ``examples``: keep (image, truth, prediction) for that many images for a picture, chosen as ``examples_by``
    says (:class:`ExamplePicker`: spread over the split, or the best and worst by per-image mIoU).
    ``crf``: refine each image's probabilities with a dense CRF before scoring. ``flip``, ``scales``: test-time
    augmentation (see :func:`predict_logits`).
    """
    model.eval()
    device = model_device(model)
    previous = dataset.transform
    dataset.transform = evaluation_transform(model.meta["mean"], model.meta["std"])
    confusion = ConfusionMatrix(model.classes.num_classes, device=device)
    # Under torchrun each rank scores every world_size-th image; the confusion matrices are then summed.
    context = distributed.current()
    indices = list(range(context.rank, len(dataset), context.world_size))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=1,
                                         num_workers=workers)
    boundary_f1 = BoundaryF1(model.classes.num_classes) if boundary else None
    picker = ExamplePicker(len(dataset), examples, examples_by)
    try:
        for index, (image, mask) in zip(indices, progress_bar(loader, progress and context.is_main,
                                                                desc="evaluating"), strict=True):
            size_scale = inference_scale(model, image.shape[2], image.shape[3], scale)
            logits = predict_logits(model, image.to(device), size_scale, tile, overlap, flip, scales)
            # The loader gives the normalised tensor; the CRF and the example picture need the RGB image.
            rgb = dataset.read_image(index) if crf is not None else None
            if crf is not None:
                logits = crf(rgb_view(rgb), logits[0].softmax(0)).unsqueeze(0)
            predicted = logits.argmax(dim=1)
            confusion.update(predicted, mask.to(device))
            if boundary_f1 is not None:
                boundary_f1.update(predicted[0].cpu().numpy(), mask[0].numpy())
            if examples:
                picker.offer(index, predicted[0].cpu().numpy(), mask[0].numpy(), model.classes.num_classes,
                             lambda index=index, rgb=rgb: rgb if rgb is not None else dataset.read_image(index))
    finally:
        dataset.transform = previous
    distributed.sum_across_ranks(confusion.matrix)
    metrics = {**confusion.compute(), **(boundary_f1.compute() if boundary_f1 is not None else {})}
    return Evaluation(metrics, confusion.matrix.cpu().numpy(), model.classes.names,
                      picker.examples([sample.name for sample in dataset.samples]))
