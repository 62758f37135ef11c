"""Metrics from one confusion matrix: pixel accuracy, mean class accuracy, IoU, mIoU, FWIoU, Dice."""

from pixelseg.metrics.confusion import ConfusionMatrix, metrics_from_confusion

__all__ = ["ConfusionMatrix", "metrics_from_confusion"]
