"""Semi-supervised training with a mean teacher and FixMatch-style consistency.

- Tarvainen & Valpola, "Mean teachers are better role models", NeurIPS 2017: the teacher is an exponential moving
  average (EMA) of the student's weights; it is what gets validated and saved.
- Sohn et al., "FixMatch", NeurIPS 2020: the teacher's prediction on a weak view of an unlabelled image, kept where
  its confidence reaches a threshold, is the target of the student on a strong view of the same pixels.
- French et al., "Semi-supervised semantic segmentation needs strong, varied perturbations", BMVC 2020, and Yang
  et al., "UniMatch", CVPR 2023: CutMix between unlabelled images, mixing the teacher's pseudo-labels with the
  same box.

Faithful: EMA teacher (decay 0.99, reached through ``min(1 - 1/(step + 1), 0.99)``: the plain average of the
student's weights so far at first, as the released code of Mean Teacher and UniMatch does), per-pixel confidence
threshold (0.95), CutMix of a random box covering about half of the crop with another unlabelled image of the batch,
strong photometric views (colour jitter, grey, blur) on the weak view's geometry, the unlabelled loss (cross-entropy
on the confident pixels) added with ``weight``.
Option: ``unlabelled_loss: training`` puts the labelled images' own loss (the config's ``loss``, class weights
included) on the confident pixels instead of plain cross-entropy, so that the pseudo-labels of the common classes
do not outweigh the rare ones that the class weights protect in the labelled loss.
Option: ``class_balanced: PORTION`` gives each class its own threshold, CBST's class-wise quantile (Zou et al.,
ECCV 2018; :func:`pixelseg.engine.methods.adaptation.class_balanced_thresholds`): the confidence above which the
top ``PORTION`` of the teacher's pixels of that class lie, averaged over the steps with the EMA's decay (each
class from the first batch it appears in), and never above ``threshold``. A rare class the teacher is unsure of
keeps its most confident pixels instead of none; a confident common class keeps FixMatch's fixed threshold.
Differs from CBST: the quantiles come from the unlabelled batches as they arrive, not from a pass over the whole
set per round, and each DDP process keeps its own.
Strong views in a pass of their own (``separate_strong``, true by default): the student sees the labelled batch
and the strong views in two forward passes (one backward), so that the labelled batch's batch-norm statistics are
not those of grey, blurred, colour-jittered, CutMixed images, as UniMatch's released code does (its labelled and
weak images share a pass, its strong views have their own). On CamVid's unseen-sequence protocol with 1/8 of the
labels it scored 1.3 points above one shared pass on both of two seeds (docs/fewer_labels.md).
``separate_strong: false`` gives FixMatch's interleaved batch: one pass over both, shared statistics.
Option: ``mix_labelled`` replaces the CutMix between unlabelled images by DACS's cross-domain mix (Tranheden et
al., WACV 2021): half of the classes of each labelled image (ClassMix, Olsson et al., WACV 2021) are pasted with
their true labels onto an unlabelled image, whose other pixels keep the teacher's pseudo-labels; meant for domain
adaptation (the target's images as ``data.unlabelled``), where the pasted source pixels keep every class supervised
in the target's context. Differs from DACS: the pseudo-labels are thresholded as above, not weighted by the share
of confident pixels, and the mix goes through the strong view's photometric perturbations. On CamVid's unseen
sequence (0006R0 as the target, 360 steps) it scored 5.3 points under source-only training (docs/fewer_labels.md).
Option: ``ema_warmup: false`` keeps the decay fixed from the first step, so that the teacher keeps its
initial weights' share (0.99^t after t steps: 37 % after 100); on the 168 steps of the roads protocol that teacher
scored 8 points under its own student (docs/fewer_labels.md).
Differs: the teacher's batch norms use their EMA running statistics (eval mode).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pixelseg.constants import IGNORE_INDEX
from pixelseg.data.transforms import denormalise, renormalise
from pixelseg.engine.methods.adaptation import balanced_pseudo_labels, class_balanced_thresholds
from pixelseg.engine.methods.base import (
    TrainingMethod,
    ema_decay,
    ema_update,
    frozen_copy,
    main_logits,
    register_method,
)
from pixelseg.engine.methods.unlabelled_stream import UnlabelledStream
from pixelseg.errors import ConfigError


def confident_pseudo_labels(probabilities: torch.Tensor, threshold: float, valid: torch.Tensor | None = None,
                            ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """The arg-max class where its probability reaches ``threshold`` (and the pixel is valid), else ignore: the
    class-wise rule of :func:`balanced_pseudo_labels` with one threshold for every class."""
    thresholds = torch.full((probabilities.shape[1],), float(threshold), device=probabilities.device)
    if valid is None:
        valid = torch.ones_like(probabilities[:, 0], dtype=torch.bool)
    return balanced_pseudo_labels(probabilities, thresholds, valid, ignore_index)


def cutmix_boxes(batch: int, height: int, width: int, generator: torch.Generator, area: float = 0.5) -> torch.Tensor:
    """One random box per sample (a boolean (batch, H, W) mask) covering about ``area`` of the crop: sides
    ``sqrt(area)`` of the crop's, centred anywhere, clipped to it (French et al.'s CutMix for segmentation)."""
    boxes = torch.zeros(batch, height, width, dtype=torch.bool)
    box_h, box_w = max(1, round(height * math.sqrt(area))), max(1, round(width * math.sqrt(area)))
    for index in range(batch):
        cy = int(torch.randint(height, (1,), generator=generator))
        cx = int(torch.randint(width, (1,), generator=generator))
        top, left = max(0, cy - box_h // 2), max(0, cx - box_w // 2)
        boxes[index, top:top + box_h, left:left + box_w] = True
    return boxes


def cutmix(images: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inside each sample's box, the pixels (and their labels) of the next sample in the batch (a cyclic shift)."""
    other_images, other_labels = images.roll(1, dims=0), labels.roll(1, dims=0)
    boxes = boxes.to(images.device)
    mixed_images = torch.where(boxes[:, None], other_images, images)
    return mixed_images, torch.where(boxes, other_labels, labels)


def classmix_masks(labels: torch.Tensor, generator: torch.Generator, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """ClassMix's masks (Olsson et al., WACV 2021): per sample, the pixels of half of the classes its labels hold
    (rounded up, drawn at random; ignored pixels never), as a boolean (batch, H, W) mask."""
    masks = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for index, label in enumerate(labels):
        present = label.unique()
        present = present[present != ignore_index].cpu()
        chosen = present[torch.randperm(len(present), generator=generator)[:(len(present) + 1) // 2]]
        masks[index] = torch.isin(label, chosen.to(label.device))
    return masks


def mix_labelled(images: torch.Tensor, labels: torch.Tensor, unlabelled: torch.Tensor, pseudo: torch.Tensor,
                 generator: torch.Generator, ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """DACS's cross-domain mix (Tranheden et al., WACV 2021): half of the classes of each labelled image, pasted with
    their true labels onto an unlabelled image whose other pixels keep the teacher's pseudo-labels. The labelled
    batch is cycled when it is smaller than the unlabelled one; crops must have one size."""
    if images.shape[-2:] != unlabelled.shape[-2:]:
        raise ConfigError(f"method.mix_labelled: labelled crops {tuple(images.shape[-2:])} and unlabelled crops "
                          f"{tuple(unlabelled.shape[-2:])} differ; give both the same data.crop_size")
    order = torch.arange(len(unlabelled)) % len(images)
    images, labels = images[order], labels[order]
    masks = classmix_masks(labels, generator, ignore_index)
    return torch.where(masks[:, None], images, unlabelled), torch.where(masks, labels, pseudo)


def strong_view(images: torch.Tensor, mean, std, generator: torch.Generator, strength: float = 0.5) -> torch.Tensor:
    """Photometric perturbations of normalised images, per sample: brightness, contrast and saturation jitter of
    ``strength``, grey with probability 0.2, a 3x3 Gaussian blur with probability 0.5; the geometry is unchanged, so
    the teacher's pseudo-labels on the weak view still line up."""
    n, c = images.shape[:2]
    x = denormalise(images, mean, std)

    def factor() -> torch.Tensor:
        return (1 + strength * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)).to(images.device)

    x = x * factor()
    grey = x.mean(dim=1, keepdim=True)
    x = (x - x.mean(dim=(1, 2, 3), keepdim=True)) * factor() + x.mean(dim=(1, 2, 3), keepdim=True)
    x = grey + (x - grey) * factor()
    to_grey = (torch.rand(n, 1, 1, 1, generator=generator) < 0.2).to(images.device)
    x = torch.where(to_grey, x.mean(dim=1, keepdim=True).expand_as(x), x)
    blur = (torch.rand(n, generator=generator) < 0.5).to(images.device)
    kernel = torch.tensor([1.0, 2.0, 1.0], device=images.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(c, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)
    x = torch.where(blur.view(-1, 1, 1, 1), blurred, x).clamp(0, 1)
    return renormalise(x, mean, std)


UNLABELLED_LOSSES = ("ce", "training")  # FixMatch's plain cross-entropy, or the labelled images' own loss


@register_method("mean_teacher")
class MeanTeacher(TrainingMethod):
    """Labelled batches as in supervised training, plus ``data.unlabelled``'s images through the teacher / student
    consistency of FixMatch with CutMix; the EMA teacher is validated and saved."""

    def __init__(self, run, threshold: float = 0.95, ema_decay: float = 0.99, weight: float = 1.0,
                 cutmix: bool = True, strength: float = 0.5, unlabelled_batch: int | None = None,
                 unlabelled_loss: str = "ce", class_balanced: float | None = None,
                 separate_strong: bool = True, mix_labelled: bool = False, ema_warmup: bool = True) -> None:
        super().__init__(run)
        if unlabelled_loss not in UNLABELLED_LOSSES:
            raise ConfigError(f"method.unlabelled_loss: {unlabelled_loss!r} is not one of "
                              f"{', '.join(UNLABELLED_LOSSES)}")
        if class_balanced is not None and not 0 < class_balanced <= 1:
            raise ConfigError(f"method.class_balanced: {class_balanced!r} must be a portion in (0, 1] or null")
        self.class_balanced, self.separate_strong = class_balanced, bool(separate_strong)
        self.class_thresholds = torch.full((run.model.classes.num_classes,), math.nan)  # NaN: class not seen yet
        self.threshold, self.ema_decay, self.weight, self.ema_warmup = threshold, ema_decay, weight, bool(ema_warmup)
        self.unlabelled_loss = unlabelled_loss
        self.use_cutmix, self.strength, self.mix_labelled = cutmix, strength, bool(mix_labelled)
        self.teacher = frozen_copy(run.model)
        self.stream = UnlabelledStream(run, unlabelled_batch)
        self.steps = 0
        self.last = {"confident": 0.0}

    def batch_loss(self, model, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        core = getattr(model, "module", model)
        weak, valid = self.stream.next_batch()
        generator = torch.Generator().manual_seed(self.run.config.train.seed * 1_000_003 + self.steps)
        with torch.no_grad():
            probabilities = self.forward(self.teacher, weak).softmax(dim=1)
        pseudo = self.pseudo_labels(probabilities, valid, core.classes.ignore_index)
        if self.mix_labelled:
            weak, pseudo = mix_labelled(images, masks, weak, pseudo, generator, core.classes.ignore_index)
        elif self.use_cutmix and len(weak) > 1:
            weak, pseudo = cutmix(weak, pseudo, cutmix_boxes(len(weak), *weak.shape[-2:], generator))
        strong = strong_view(weak, core.meta["mean"], core.meta["std"], generator, self.strength)
        labelled, unlabelled = self.student_outputs(model, images, strong)
        supervised = core.training_loss(self.run.loss_fn, labelled, masks)
        confident = pseudo != core.classes.ignore_index
        self.last = {"confident": float(confident.float().mean())}
        if not confident.any():
            return supervised + 0.0 * main_logits(unlabelled).sum()  # every parameter still gets a gradient
        if self.unlabelled_loss == "training":
            consistency = self.run.loss_fn(main_logits(unlabelled).float(), pseudo)
        else:
            consistency = F.cross_entropy(main_logits(unlabelled), pseudo, ignore_index=core.classes.ignore_index)
        return supervised + self.weight * consistency

    def student_outputs(self, model, images: torch.Tensor, strong: torch.Tensor) -> tuple:
        """The student's outputs for the labelled images and the strong views: with ``separate_strong`` one pass
        each (each with its own batch-norm statistics), else one pass over both."""
        if self.separate_strong:
            return self.forward(model, images), self.forward(model, strong)
        return self.forward_together(model, images, strong)

    def pseudo_labels(self, probabilities: torch.Tensor, valid: torch.Tensor, ignore_index: int) -> torch.Tensor:
        """The teacher's confident pixels: above ``threshold``, or with ``class_balanced`` above each class's own
        running quantile (capped at ``threshold``)."""
        if self.class_balanced is None:
            return confident_pseudo_labels(probabilities, self.threshold, valid, ignore_index)
        confidence, predicted = probabilities.detach().float().max(dim=1)
        confidence, predicted = confidence[valid].cpu(), predicted[valid].cpu()
        count = len(self.class_thresholds)
        batch = class_balanced_thresholds(confidence, predicted, count, self.class_balanced)
        present = torch.bincount(predicted, minlength=count) > 0
        first = present & self.class_thresholds.isnan()
        self.class_thresholds[first] = batch[first]
        update = present & ~first
        self.class_thresholds[update] = (self.ema_decay * self.class_thresholds[update]
                                         + (1 - self.ema_decay) * batch[update])
        thresholds = self.class_thresholds.nan_to_num(self.threshold).clamp(max=self.threshold)
        return balanced_pseudo_labels(probabilities, thresholds, valid, ignore_index)

    def after_step(self) -> None:
        ema_update(self.teacher, self.run.model, ema_decay(self.steps, self.ema_decay, self.ema_warmup))
        self.steps += 1

    def evaluated_model(self) -> torch.nn.Module:
        return self.teacher

    def shipped_weights(self, checkpoint: dict) -> dict:
        return checkpoint["method"]["teacher"]

    def state_dict(self) -> dict:
        return {"teacher": self.teacher.state_dict(), "steps": self.steps, "stream": self.stream.state_dict(),
                "class_thresholds": self.class_thresholds.clone()}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.teacher.load_state_dict(state["teacher"])
            self.steps = int(state["steps"])
            self.stream.load_state_dict(state["stream"])
            if "class_thresholds" in state:  # checkpoints written before the option have none
                self.class_thresholds = state["class_thresholds"].clone()
