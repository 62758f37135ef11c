"""Segmentation metrics, all derived from one confusion matrix (rows = true class, columns = predicted).

The matrix is accumulated batch by batch with one ``bincount``, so no prediction is kept in memory.
Classes absent from both the labels and the predictions have no IoU (NaN) and are left out of the means.
"""

from __future__ import annotations

import numpy as np
import torch

from pixelseg.data.classes import IGNORE_INDEX


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
        """Add a batch: ``predictions`` are class indices (or logits with the class axis at dim 1)."""
        if predictions.dim() == labels.dim() + 1:
            predictions = predictions.argmax(dim=1)
        if predictions.shape != labels.shape:
            raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ in shape")
        labels = labels.reshape(-1).to(self.matrix.device)
        predictions = predictions.reshape(-1).to(self.matrix.device)
        valid = (labels != self.ignore_index) & (labels >= 0) & (labels < self.num_classes)
        codes = labels[valid].long() * self.num_classes + predictions[valid].long()
        self.matrix += torch.bincount(codes, minlength=self.num_classes**2).reshape(self.num_classes, -1)

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix.to(self.matrix.device)

    def compute(self) -> dict:
        """All metrics as plain Python numbers (fractions in 0..1, NaN where undefined)."""
        return metrics_from_confusion(self.matrix.cpu().numpy())


def metrics_from_confusion(matrix: np.ndarray) -> dict:
    """Pixel accuracy, mean class accuracy, per-class IoU, mIoU, frequency-weighted IoU and Dice (F1)."""
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
    frequency = labelled / total if total else np.zeros_like(labelled)
    present = ~np.isnan(iou)
    return {
        "pixel_accuracy": float(true_positive.sum() / total) if total else float("nan"),
        "mean_class_accuracy": _nanmean(class_accuracy),
        "miou": _nanmean(iou),
        "fwiou": float((frequency[present] * iou[present]).sum()) if total else float("nan"),
        "mean_dice": _nanmean(dice),
        "iou": iou.tolist(),
        "class_accuracy": class_accuracy.tolist(),
        "dice": dice.tolist(),
        "pixels": labelled.astype(np.int64).tolist(),
    }


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
