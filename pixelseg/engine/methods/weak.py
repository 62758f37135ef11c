"""Training on weak labels: scribbles with a CRF regulariser, boxes with pseudo-masks refreshed during training.
The weak targets themselves come from ``pixelseg data weak`` (:mod:`pixelseg.classical.weak_labels`): scribbles
are class values on thin strokes and 255 (unknown) elsewhere; boxes are GrabCut masks (or whole boxes) with the
uncertain rest of each box at 255 and background outside every box.

- ``scribble_crf``: Tang, Perazzi, Djelouah, Ben Ayed, Schroers & Boykov, "On Regularized Losses for
  Weakly-supervised CNN Segmentation", ECCV 2018: the partial cross-entropy on the scribbled pixels (the configured
  loss, which ignores 255) plus ``weight`` times the relaxed dense-CRF (Potts) energy of the softmax ``S``,
  ``sum_ij W_ij S_i^T (1 - S_j)``, with the bilateral kernel ``W_ij = exp(-|p_i - p_j|^2 / 2 sxy^2 - |I_i - I_j|^2 /
  2 srgb^2)``. Faithful: the energy, its kernel and its gradient through the softmax. Differs: the kernel is
  truncated to a ``(2 radius + 1)^2`` window on a grid ``downsample`` times coarser (as in Obukhov et al.'s
  "Gated CRF loss", 2019) instead of the paper's fully connected kernel by permutohedral filtering; the energy is
  a mean per pixel, so ``weight`` does not depend on the crop size. Default ``weight`` 0.1: on CamVid's 11 classes
  0.5 outweighs the strokes and the network drops six classes (26.8 % mIoU against 40.1 % at 0.1 and 38.4 % at 0);
  on two-class portraits 0.5 is 0.35 points above 0.1 (docs/fewer_labels.md).
- ``box_refresh``: BoxSup (Dai, He & Sun, ICCV 2015) and the recursive training of "Simple Does It" (Khoreva et
  al., CVPR 2017): start from the box pseudo-masks; every ``round_epochs`` epochs from ``warmup_epochs`` on, a
  frozen copy of the current network labels the uncertain pixels of each batch (255 in the target), keeping its
  prediction where its confidence reaches ``threshold`` and the class is the background or a class the sample's
  certain pixels hold (a box's class cannot be changed into another). Certain pixels are never overwritten.
  Differs: BoxSup picks among MCG segment candidates and Simple Does It re-runs a dense CRF on each round's output;
  here the refresh is per pixel, on each batch's augmented view (as the self-training method's pseudo-labels), and
  the box's class is inferred from the sample's certain pixels, exact for one foreground class (portraits) and an
  approximation where boxes of different classes overlap.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from pixelseg.data.transforms import denormalise
from pixelseg.engine.methods.base import TrainingMethod, main_logits, register_method
from pixelseg.errors import ConfigError


def crf_energy(probabilities: torch.Tensor, image: torch.Tensor, sxy: float = 6.0, srgb: float = 15.0,
               radius: int = 3, downsample: int = 2) -> torch.Tensor:
    """The relaxed Potts energy of Tang et al. 2018 per pixel: the mean over pixels of ``sum_j W_ij (1 - S_i . S_j)``
    over the window's other pixels. ``probabilities`` (N, C, H, W) sum to 1 over C; ``image`` (N, 3, H, W) in 0..255;
    ``sxy`` in pixels of the input, ``srgb`` in grey levels."""
    if downsample > 1:
        size = (max(1, probabilities.shape[2] // downsample), max(1, probabilities.shape[3] // downsample))
        probabilities = F.interpolate(probabilities, size=size, mode="bilinear", align_corners=False)
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    height, width = probabilities.shape[2:]
    energy = probabilities.new_zeros(())
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if (dy, dx) == (0, 0) or abs(dy) >= height or abs(dx) >= width:
                continue
            rows_a, rows_b = slice(max(dy, 0), height + min(dy, 0)), slice(max(-dy, 0), height + min(-dy, 0))
            cols_a, cols_b = slice(max(dx, 0), width + min(dx, 0)), slice(max(-dx, 0), width + min(-dx, 0))
            colour = (image[:, :, rows_a, cols_a] - image[:, :, rows_b, cols_b]).pow(2).sum(dim=1)
            spatial = (dy * dy + dx * dx) * downsample * downsample / (2 * sxy * sxy)
            kernel = torch.exp(-spatial - colour / (2 * srgb * srgb))
            agreement = (probabilities[:, :, rows_a, cols_a] * probabilities[:, :, rows_b, cols_b]).sum(dim=1)
            energy = energy + (kernel * (1 - agreement)).sum()
    return energy / (probabilities.shape[0] * height * width)


@register_method("scribble_crf")
class CRFRegularisedScribbles(TrainingMethod):
    """Scribble supervision: the configured loss on the scribbled pixels (the rest is 255, ignored) plus ``weight``
    times the dense-CRF energy of the prediction (:func:`crf_energy`) over every pixel of the crop."""

    def __init__(self, run, weight: float = 0.1, sxy: float = 6.0, srgb: float = 15.0, radius: int = 3,
                 downsample: int = 2) -> None:
        super().__init__(run)
        if weight < 0 or radius < 1 or downsample < 1 or sxy <= 0 or srgb <= 0:
            raise ConfigError("method scribble_crf needs weight >= 0, radius >= 1, downsample >= 1, sxy > 0, srgb > 0")
        self.weight, self.kernel = weight, {"sxy": sxy, "srgb": srgb, "radius": radius, "downsample": downsample}

    def batch_loss(self, model, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        core = getattr(model, "module", model)
        outputs = self.forward(model, images)
        loss = core.training_loss(self.run.loss_fn, outputs, masks)
        if self.weight == 0:
            return loss
        grey = denormalise(images[:, :3].float(), core.meta["mean"][:3], core.meta["std"][:3]) * 255
        if grey.shape[1] == 1:
            grey = grey.expand(-1, 3, -1, -1)
        return loss + self.weight * crf_energy(main_logits(outputs).softmax(dim=1), grey, **self.kernel)


def refreshed_targets(masks: torch.Tensor, probabilities: torch.Tensor, threshold: float, background: int,
                      ignore_index: int) -> torch.Tensor:
    """The targets of one refresh: certain pixels unchanged; an uncertain pixel (``ignore_index``) takes the
    labeller's class where its confidence reaches ``threshold`` and that class is ``background`` or one of the
    classes among the sample's certain pixels; otherwise it stays uncertain."""
    num_classes = probabilities.shape[1]
    allowed = torch.zeros(masks.shape[0], num_classes, dtype=torch.bool, device=masks.device)
    for i, mask in enumerate(masks):
        present = mask[mask != ignore_index].unique()
        allowed[i, present[present < num_classes]] = True
    allowed[:, background] = True
    restricted = probabilities.masked_fill(~allowed[:, :, None, None], 0.0)
    confidence, labels = restricted.max(dim=1)
    take = (masks == ignore_index) & (confidence >= threshold)
    return torch.where(take, labels, masks)


@register_method("box_refresh")
class BoxRefresh(TrainingMethod):
    """Box supervision with refreshed pseudo-masks: the configured loss on the box pseudo-masks; from
    ``warmup_epochs`` on, the uncertain pixels of each batch are labelled by a frozen copy of the network
    (:func:`refreshed_targets`), the copy refreshed every ``round_epochs`` epochs."""

    def __init__(self, run, warmup_epochs: int = 2, round_epochs: int = 2, threshold: float = 0.8,
                 background: int = 0) -> None:
        super().__init__(run)
        if warmup_epochs < 0 or round_epochs < 1 or not 0 < threshold <= 1:
            raise ConfigError("method box_refresh needs warmup_epochs >= 0, round_epochs >= 1 and 0 < threshold <= 1")
        self.warmup_epochs, self.round_epochs, self.threshold = warmup_epochs, round_epochs, threshold
        self.background = background
        self.labeller = copy.deepcopy(run.model).eval()
        self.round, self.steps = 0, 0

    def _due_round(self) -> int:
        """The refresh round the current step belongs to (0: still warming up on the box pseudo-masks)."""
        epoch = self.steps / max(1, self.run.steps_per_epoch)
        if epoch < self.warmup_epochs:
            return 0
        return 1 + math.floor((epoch - self.warmup_epochs) / self.round_epochs)

    def batch_loss(self, model, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        core = getattr(model, "module", model)
        due = self._due_round()
        if due > self.round:
            self.labeller.load_state_dict(self.run.model.state_dict())
            self.round = due
        if self.round > 0:
            with torch.no_grad():
                probabilities = self.forward(self.labeller, images).softmax(dim=1)
            masks = refreshed_targets(masks, probabilities, self.threshold, self.background,
                                      core.classes.ignore_index)
        return core.training_loss(self.run.loss_fn, self.forward(model, images), masks)

    def after_step(self) -> None:
        self.steps += 1

    def state_dict(self) -> dict:
        return {"labeller": self.labeller.state_dict(), "round": self.round, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.labeller.load_state_dict(state["labeller"])
            self.round, self.steps = int(state["round"]), int(state["steps"])
