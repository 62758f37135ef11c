"""Metrics from one confusion matrix (pixel accuracy, mean class accuracy, IoU, mIoU, FWIoU, Dice/F1, precision,
recall) and the boundary F1 score."""

from pixelseg.metrics.boundary import BoundaryF1, boundary_f1
from pixelseg.metrics.confusion import ConfusionMatrix, metrics_from_confusion

__all__ = ["BoundaryF1", "ConfusionMatrix", "boundary_f1", "metrics_from_confusion"]
