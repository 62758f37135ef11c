"""Segmentation losses. Every loss takes logits (N, C, H, W) and labels (N, H, W) and skips ``ignore_index``.

- :class:`CrossEntropyLoss`: optional class weights.
- :class:`OhemCrossEntropyLoss`: cross-entropy on the hard pixels only (online hard example mining).
- :class:`FocalLoss`: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
- :class:`DiceLoss`: soft Dice, Milletari et al., "V-Net", 3DV 2016 (multi-class, averaged over classes present).
- :class:`CombinedLoss`: a weighted sum of the above.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pixelseg.constants import IGNORE_INDEX


def _weight_tensor(class_weights: Sequence[float] | torch.Tensor | None) -> torch.Tensor | None:
    return None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)


class CrossEntropyLoss(nn.Module):
    """Pixel-wise cross-entropy, mean over non-ignored pixels (weighted by class weights when given)."""

    def __init__(self, class_weights: Sequence[float] | None = None, ignore_index: int = IGNORE_INDEX,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("class_weights", _weight_tensor(class_weights), persistent=False)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not (labels != self.ignore_index).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), labels, weight=self.class_weights, ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)


class OhemCrossEntropyLoss(nn.Module):
    """Cross-entropy over the hard pixels of the batch: online hard example mining (Shrivastava, Gupta & Girshick,
    CVPR 2016) as semantic segmentation uses it (the "bootstrapped" loss of Wu, Shen & van den Hengel, 2016, and
    PSPNet's and OCNet's training code).

    A pixel is hard when the probability of its label is below ``threshold``; when fewer than ``min_kept`` of the
    batch's labelled pixels are hard (a fraction, 0-1), the ``min_kept`` pixels of lowest label probability are
    kept instead. The loss is the (class-weighted) mean cross-entropy of the kept pixels. Differs from those codes
    in one way: ``min_kept`` is a fraction of the labelled pixels rather than a pixel count, so it holds across crop
    and batch sizes (their 100,000 pixels at batch 8 of 769x769 crops is about 0.02)."""

    def __init__(self, class_weights: Sequence[float] | None = None, ignore_index: int = IGNORE_INDEX,
                 threshold: float = 0.7, min_kept: float = 0.1) -> None:
        super().__init__()
        if not 0 < threshold <= 1 or not 0 <= min_kept <= 1:
            raise ValueError(f"ohem: threshold must be in (0, 1] and min_kept in [0, 1], got {threshold}, {min_kept}")
        self.register_buffer("class_weights", _weight_tensor(class_weights), persistent=False)
        self.ignore_index, self.threshold, self.min_kept = ignore_index, threshold, min_kept

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid = labels != self.ignore_index
        if not valid.any():
            return logits.sum() * 0.0
        log_probabilities = F.log_softmax(logits.float(), dim=1)
        labelled = labels[valid]
        log_p = log_probabilities.permute(0, 2, 3, 1)[valid].gather(1, labelled.unsqueeze(1)).squeeze(1)
        probability = log_p.detach().exp()
        hard = probability < self.threshold
        wanted = max(1, int(self.min_kept * probability.numel()))
        if int(hard.sum()) < wanted:  # too few hard pixels: the `wanted` least likely ones
            hard = probability <= torch.kthvalue(probability, wanted).values
        weights = (self.class_weights[labelled] if self.class_weights is not None
                   else torch.ones_like(log_p))[hard]
        return -(log_p[hard] * weights).sum() / weights.sum()


class FocalLoss(nn.Module):
    """Focal loss ``-alpha_c (1 - p_t)^gamma log p_t``, mean over non-ignored pixels; gamma = 0 is cross-entropy."""

    def __init__(self, gamma: float = 2.0, class_weights: Sequence[float] | None = None,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("class_weights", _weight_tensor(class_weights), persistent=False)
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid = labels != self.ignore_index
        if not valid.any():
            return logits.sum() * 0.0
        log_probabilities = F.log_softmax(logits.float(), dim=1)
        safe_labels = torch.where(valid, labels, torch.zeros_like(labels))
        log_p = log_probabilities.gather(1, safe_labels.unsqueeze(1)).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        if self.class_weights is not None:
            weights = self.class_weights[safe_labels]
            return (loss * weights)[valid].sum() / weights[valid].sum()
        return loss[valid].mean()


class DiceLoss(nn.Module):
    """Soft Dice loss ``1 - 2|P∩G| / (|P| + |G|)`` on softmax probabilities, per class, averaged.

    Classes that appear neither in the labels nor (softly) in the predictions of the batch are left out
    of the average, so an absent class does not pull the loss. ``squared=True`` is V-Net's form (Milletari, Navab &
    Ahmadi, "V-Net", 3DV 2016, eq. 1): ``1 - 2 sum(p g) / (sum(p^2) + sum(g^2))``.
    """

    def __init__(self, smooth: float = 1.0, ignore_index: int = IGNORE_INDEX, squared: bool = False) -> None:
        super().__init__()
        self.smooth = smooth
        self.ignore_index = ignore_index
        self.squared = squared

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        valid = (labels != self.ignore_index).unsqueeze(1)
        probabilities = F.softmax(logits.float(), dim=1) * valid
        safe_labels = torch.where(valid.squeeze(1), labels, torch.zeros_like(labels))
        one_hot = F.one_hot(safe_labels, num_classes).permute(0, 3, 1, 2).float() * valid
        dims = (0, 2, 3)
        intersection = (probabilities * one_hot).sum(dims)
        if self.squared:  # one_hot is 0/1, so its square is itself
            cardinality = (probabilities * probabilities).sum(dims) + one_hot.sum(dims)
        else:
            cardinality = probabilities.sum(dims) + one_hot.sum(dims)
        dice = (2 * intersection + self.smooth) / (cardinality + self.smooth)
        present = one_hot.sum(dims) > 0
        if not present.any():
            return logits.sum() * 0.0
        return (1 - dice)[present].mean()


def lovasz_gradient(sorted_truth: torch.Tensor) -> torch.Tensor:
    """The gradient of the Lovász extension of the Jaccard loss at pixels sorted by decreasing error (Berman et al.,
    Algorithm 1): ``g_i = J(first i pixels) - J(first i-1 pixels)``."""
    total = sorted_truth.sum()
    intersection = total - sorted_truth.cumsum(0)
    union = total + (1 - sorted_truth).cumsum(0)
    jaccard = 1 - intersection / union
    if sorted_truth.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


class LovaszSoftmaxLoss(nn.Module):
    """Lovász-softmax: Berman, Rannen Triki & Blaschko, "The Lovász-Softmax loss: a tractable surrogate for the
    optimization of the intersection-over-union measure in neural networks", CVPR 2018.

    For each class present in the batch's labels, the pixels' errors ``|1[y = c] - p_c|`` are sorted and dotted with
    the Lovász gradient of the Jaccard loss; the loss is the mean over those classes (the paper's ``classes='present'``,
    computed over the whole batch, ``per_image=False``). With one-hot probabilities it equals the mean of ``1 - IoU_c``
    over the present classes, so it optimises mIoU directly. Faithful to the paper's reference code; ignored pixels
    are left out.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        probabilities = F.softmax(logits.float(), dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
        labels = labels.reshape(-1)
        valid = labels != self.ignore_index
        probabilities, labels = probabilities[valid], labels[valid]
        losses = []
        for c in torch.unique(labels).tolist():
            truth = (labels == c).float()
            errors = (truth - probabilities[:, c]).abs()
            sorted_errors, order = torch.sort(errors, descending=True)
            losses.append(torch.dot(sorted_errors, lovasz_gradient(truth[order])))
        if not losses:
            return logits.sum() * 0.0
        return torch.stack(losses).mean()


class CombinedLoss(nn.Module):
    """``sum_i weight_i * loss_i`` over named losses; ``parts`` of the last call are kept for logging."""

    def __init__(self, losses: dict[str, nn.Module], weights: dict[str, float]) -> None:
        super().__init__()
        self.losses = nn.ModuleDict(losses)
        self.weights = dict(weights)
        self.parts: dict[str, float] = {}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        total = 0.0
        parts = {}
        for name, loss in self.losses.items():
            value = loss(logits, labels)
            parts[name] = float(value.detach())
            total = total + self.weights[name] * value
        self.parts = parts
        return total
