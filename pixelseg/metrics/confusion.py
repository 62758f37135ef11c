"""Segmentation metrics, all derived from one confusion matrix (rows = true class, columns = predicted).

The matrix is accumulated batch by batch with one ``bincount``, so no prediction is kept in memory
(throughput against torchmetrics: docs/performance.md).
Classes absent from both the labels and the predictions have no IoU (NaN) and are left out of the means.
"""

from __future__ import annotations

import numpy as np
import torch

from pixelseg.constants import IGNORE_INDEX


class ConfusionMatrix:
    """Accumulates a ``num_classes x num_classes`` confusion matrix over batches and images.

    >>> matrix = ConfusionMatrix(3)
    >>> matrix.update(predictions, labels)  # any shapes, same size; labels == ignore_index are skipped
    >>> matrix.compute()["miou"]
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, device: str | torch.device = "cpu"):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch: ``predictions`` are class indices (or logits with the class axis at dim 1).

        One ``bincount`` over ``row * C + prediction`` codes, in 16-bit integers where they fit (C <= 180): every
        unlabelled pixel (ignore index, or a label outside 0..C-1) gets row C, a dump row that is dropped."""
        if predictions.dim() == labels.dim() + 1:
            predictions = predictions.argmax(dim=1)
        if predictions.shape != labels.shape:
            raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ in shape")
        if labels.numel() == 0:
            return
        n = self.num_classes
        labels = labels.to(self.matrix.device)
        predictions = predictions.to(self.matrix.device)
        lowest, highest = (int(v) for v in torch.aminmax(predictions))
        if lowest < 0 or highest >= n:
            raise ValueError(f"predictions hold class {lowest if lowest < 0 else highest}, outside 0..{n - 1}")
        code_type = torch.int16 if n * (n + 1) <= 2**15 else torch.int64
        lowest, highest = (int(v) for v in torch.aminmax(labels))
        if highest >= torch.iinfo(code_type).max:  # narrow only what fits
            labels = labels.clamp(max=n)
        rows = labels.to(code_type, copy=True)  # never written into the caller's labels
        if lowest < 0:
            rows.masked_fill_(rows < 0, n)
        if highest > n:
            rows.clamp_(max=n)
        if 0 <= self.ignore_index < n:
            rows.masked_fill_(labels == self.ignore_index, n)
        codes = rows.mul_(n).add_(predictions.to(code_type))
        counts = torch.bincount(codes.reshape(-1), minlength=n * (n + 1))
        self.matrix += counts[: n * n].reshape(n, n)

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix.to(self.matrix.device)

    def compute(self) -> dict:
        """All metrics as plain Python numbers (fractions in 0..1, NaN where undefined)."""
        return metrics_from_confusion(self.matrix.cpu().numpy())


def metrics_from_confusion(matrix: np.ndarray) -> dict:
    """Pixel accuracy, mean class accuracy, per-class IoU, mIoU, frequency-weighted IoU, Dice (= F1), precision
    and recall (= class accuracy: the share of a class's pixels found)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    labelled = matrix.sum(axis=1)  # pixels of each true class
    predicted = matrix.sum(axis=0)
    union = labelled + predicted - true_positive
    total = matrix.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        class_accuracy = np.where(labelled > 0, true_positive / labelled, np.nan)
        iou = np.where(union > 0, true_positive / union, np.nan)
        dice = np.where(labelled + predicted > 0, 2 * true_positive / (labelled + predicted), np.nan)
        precision = np.where(predicted > 0, true_positive / predicted, np.where(labelled > 0, 0.0, np.nan))
    frequency = labelled / total if total else np.zeros_like(labelled)
    present = ~np.isnan(iou)
    return {
        "pixel_accuracy": float(true_positive.sum() / total) if total else float("nan"),
        "mean_class_accuracy": _nanmean(class_accuracy),
        "miou": _nanmean(iou),
        "fwiou": float((frequency[present] * iou[present]).sum()) if total else float("nan"),
        "mean_dice": _nanmean(dice),
        "mean_precision": _nanmean(precision),
        "iou": iou.tolist(),
        "class_accuracy": class_accuracy.tolist(),
        "dice": dice.tolist(),
        "precision": precision.tolist(),
        "recall": class_accuracy.tolist(),
        "pixels": labelled.astype(np.int64).tolist(),
    }


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
