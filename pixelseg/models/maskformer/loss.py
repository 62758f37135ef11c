"""MaskFormer's set-prediction loss (Cheng et al., NeurIPS 2021, Section 3.2 and 4): bipartite (Hungarian) matching
of predicted masks to ground-truth segments, then cross-entropy on the classes and focal + dice on the matched masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from pixelseg.constants import IGNORE_INDEX


def semantic_targets(mask: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """One segment per class present in a label map (semantic segmentation): the class ids and binary masks."""
    classes = mask.unique()
    classes = classes[classes != ignore_index]
    return classes, (mask[None] == classes[:, None, None]).float()


def pairwise_focal_cost(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, alpha: float = 0.25,
                        gamma: float = 2.0) -> torch.Tensor:
    """Q x G mean sigmoid focal loss of every predicted mask (Q x P) against every target mask (G x P), over the
    valid pixels."""
    prob = logits.sigmoid()
    positive = alpha * (1 - prob) ** gamma * F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits),
                                                                                reduction="none")
    negative = (1 - alpha) * prob ** gamma * F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits),
                                                                               reduction="none")
    positive, negative = positive * valid, negative * valid
    return (positive @ targets.T + negative @ (1 - targets).T) / valid.sum().clamp_min(1)


def pairwise_dice_cost(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    prob = logits.sigmoid() * valid
    numerator = 2 * prob @ targets.T
    return 1 - (numerator + 1) / (prob.sum(-1)[:, None] + targets.sum(-1)[None, :] + 1)


class MaskFormerLoss:
    """Match, then score: class cost/loss weight 1 (no-object class down-weighted to 0.1), mask focal 20, dice 1; on
    the predictions of every decoder layer (deep supervision). Targets are taken at the masks' resolution (nearest)."""

    def __init__(self, num_classes: int, no_object_weight: float = 0.1, class_weight: float = 1.0,
                 focal_weight: float = 20.0, dice_weight: float = 1.0, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.weights = (class_weight, focal_weight, dice_weight)
        self.empty_weight = torch.ones(num_classes + 1)
        self.empty_weight[-1] = no_object_weight

    @torch.no_grad()
    def match(self, class_logits, mask_logits, classes, targets, valid) -> tuple[torch.Tensor, torch.Tensor]:
        cost = (-self.weights[0] * class_logits.softmax(-1)[:, classes]
                + self.weights[1] * pairwise_focal_cost(mask_logits, targets, valid)
                + self.weights[2] * pairwise_dice_cost(mask_logits, targets, valid))
        rows, columns = linear_sum_assignment(cost.cpu().numpy())
        return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(columns, dtype=torch.long)

    def layer_loss(self, prediction: dict[str, torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
        class_logits, mask_logits = prediction["class_logits"], prediction["mask_logits"]
        labels = F.interpolate(masks[:, None].float(), size=mask_logits.shape[-2:], mode="nearest")[:, 0].long()
        total = class_logits.new_zeros(())
        for index in range(len(labels)):
            classes, targets = semantic_targets(labels[index], self.ignore_index)
            valid = (labels[index] != self.ignore_index).flatten().float()
            logits = mask_logits[index].flatten(1)
            targets = targets.flatten(1)
            rows, columns = self.match(class_logits[index], logits, classes, targets, valid)
            target_classes = torch.full((class_logits.shape[1],), self.num_classes, dtype=torch.long,
                                        device=class_logits.device)
            target_classes[rows] = classes[columns]
            total = total + self.weights[0] * F.cross_entropy(class_logits[index], target_classes,
                                                              self.empty_weight.to(class_logits.device))
            if len(rows):
                matched, goals = logits[rows], targets[columns]
                total = total + self.weights[1] * pairwise_focal_cost(matched, goals, valid).diagonal().mean()
                total = total + self.weights[2] * pairwise_dice_cost(matched, goals, valid).diagonal().mean()
        return total / len(labels)

    def __call__(self, predictions: list[dict[str, torch.Tensor]], masks: torch.Tensor) -> torch.Tensor:
        return sum(self.layer_loss(prediction, masks) for prediction in predictions)
