"""Boundary F1 (BF score): Csurka, Larlus & Perronnin, "What is a good evaluation measure for semantic
segmentation?", BMVC 2013.

Per image and class, the predicted and true boundaries (pixels of the class with a 4-neighbour outside it) are
matched within a distance tolerance: precision is the share of predicted boundary pixels within ``tolerance`` of a
true boundary pixel, recall the share of true boundary pixels within it of a predicted one, BF their harmonic mean.
The image's score is the mean over the classes on either boundary; the dataset's the mean over images (as Csurka et
al.). Tolerance: 0.75 % of the image diagonal by default (their theta). Masks may have unlabelled (``ignore_index``)
bands between objects, as VOC's do: the true boundary of a class runs along them; predicted boundary pixels inside
unlabelled areas are not scored.
"""

from __future__ import annotations

import cv2
import numpy as np

from pixelseg.constants import IGNORE_INDEX

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def class_boundary(mask: np.ndarray) -> np.ndarray:
    """The pixels of a boolean mask with a 4-neighbour outside it (the image's border does not count as outside)."""
    grown = cv2.dilate((~mask).astype(np.uint8), _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return mask & grown.astype(bool)


def _within(boundary: np.ndarray, reference: np.ndarray, tolerance: float) -> float:
    """The share of ``boundary``'s pixels within ``tolerance`` pixels of one of ``reference``'s."""
    distance = cv2.distanceTransform((~reference).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return float((distance[boundary] <= tolerance).mean())


def boundary_f1(prediction: np.ndarray, label: np.ndarray, num_classes: int, tolerance: float | None = None,
                ignore_index: int = IGNORE_INDEX, classes=None) -> dict[int, tuple[float, float, float]]:
    """Per class on either boundary of this image: (precision, recall, F1). ``classes`` limits the classes scored
    (e.g. only the foreground of a portrait); ``tolerance`` in pixels (default 0.75 % of the diagonal)."""
    prediction, label = np.asarray(prediction), np.asarray(label)
    if prediction.shape != label.shape:
        raise ValueError(f"prediction {prediction.shape} and label {label.shape} differ in shape")
    tolerance = 0.0075 * float(np.hypot(*label.shape)) if tolerance is None else tolerance
    valid = label != ignore_index
    scores = {}
    for c in (range(num_classes) if classes is None else classes):
        # True boundaries border any other value, the ignore bands of VOC-style masks included; predicted boundary
        # pixels inside unlabelled areas are not scored, but still count as matches for the true ones.
        predicted_all = class_boundary(prediction == c)
        predicted, true = predicted_all & valid, class_boundary(label == c)
        if not predicted.any() and not true.any():
            continue
        if not predicted.any() or not true.any():
            scores[c] = (0.0, 0.0, 0.0)  # a boundary on one side only: nothing matched
            continue
        precision, recall = _within(predicted, true, tolerance), _within(true, predicted_all, tolerance)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[c] = (precision, recall, f1)
    return scores


class BoundaryF1:
    """Mean boundary F1 over images (each image: the mean over its scored classes), and per class over the images
    where the class is on a boundary."""

    def __init__(self, num_classes: int, tolerance: float | None = None, ignore_index: int = IGNORE_INDEX,
                 classes=None) -> None:
        self.num_classes, self.tolerance, self.ignore_index = num_classes, tolerance, ignore_index
        self.classes = classes
        self.image_scores: list[float] = []
        self.class_scores: dict[int, list[float]] = {}

    def update(self, prediction: np.ndarray, label: np.ndarray) -> None:
        scores = boundary_f1(prediction, label, self.num_classes, self.tolerance, self.ignore_index, self.classes)
        if scores:
            self.image_scores.append(float(np.mean([f1 for _, _, f1 in scores.values()])))
        for c, (_, _, f1) in scores.items():
            self.class_scores.setdefault(c, []).append(f1)

    def compute(self) -> dict:
        per_class = [float(np.mean(self.class_scores[c])) if c in self.class_scores else float("nan")
                     for c in range(self.num_classes)]
        mean = float(np.mean(self.image_scores)) if self.image_scores else float("nan")
        return {"boundary_f1": mean, "boundary_f1_per_class": per_class}
