"""The training-method interface and the default, supervised training."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

METHODS: dict[str, type] = {}
"""The training-method registry: name -> class (``method.name`` in a config)."""


def register_method(name: str) -> Callable:
    """Decorator: register a :class:`TrainingMethod` subclass under ``name``."""

    def decorator(cls: type) -> type:
        if name in METHODS:
            raise ValueError(f"training method {name!r} is registered twice")
        METHODS[name] = cls
        cls.name = name
        return cls

    return decorator


def to_float32(outputs):
    """Model outputs (a tensor, a tuple of them, MaskFormer's dict) in float32, for a loss computed in float32."""
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(to_float32(o) for o in outputs)
    if isinstance(outputs, dict):
        return {key: to_float32(value) for key, value in outputs.items()}
    return outputs.float() if isinstance(outputs, torch.Tensor) else outputs


def split_outputs(outputs, sizes: list[int]) -> list:
    """Outputs of one forward pass over concatenated batches, split back per batch (each auxiliary head's too)."""
    if isinstance(outputs, tuple):
        parts = [o.split(sizes) for o in outputs]
        return [tuple(p[i] for p in parts) for i in range(len(sizes))]
    return list(outputs.split(sizes))


def main_logits(outputs) -> torch.Tensor:
    """The main head's logits (not the auxiliary heads')."""
    return outputs[0] if isinstance(outputs, tuple) else outputs


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` in eval mode whose parameters take no gradient: an EMA teacher or a weight average."""
    copied = copy.deepcopy(model).eval()
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    return copied


def ema_decay(step: int, decay: float, warmup: bool = True) -> float:
    """The decay of the ``step``-th moving-average update (0-based): ``min(1 - 1/(step + 1), decay)`` with
    ``warmup`` (the average of every weight so far until that reaches ``decay``, as the released code of Mean Teacher
    does), else ``decay`` from the first step, which keeps ``decay ** step`` of the starting weights."""
    return min(1 - 1 / (step + 1), decay) if warmup else decay


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, decay: float) -> None:
    """``teacher = decay * teacher + (1 - decay) * student`` for every parameter; buffers (batch-norm running
    statistics) are averaged the same way, integer buffers (batch counts) copied."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        if t.dtype.is_floating_point:
            t.mul_(decay).add_(s, alpha=1 - decay)
        else:
            t.copy_(s)


class TrainingMethod:
    """What a training method decides. ``run`` is the built run (:class:`pixelseg.engine.trainer.Run`: config,
    model, loss, device, precision); the trainer calls, per batch, :meth:`batch_loss` and, after each optimizer step,
    :meth:`after_step`; it saves :meth:`state_dict` in checkpoints and validates and ships :meth:`evaluated_model`."""

    name = "base"

    def __init__(self, run) -> None:
        self.run = run

    def forward(self, model, images: torch.Tensor):
        """The model's outputs under the run's autocast precision, in float32."""
        device, dtype = self.run.device, self.run.amp_dtype
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            return to_float32(model(images))

    def forward_together(self, model, images: torch.Tensor, extra: torch.Tensor) -> tuple:
        """The outputs for ``images`` and for ``extra`` (unlabelled or target images) from one forward pass over
        both: batch-norm statistics over both (FixMatch's interleaved batch). For images of the same domain; the
        domain-adaptation methods use one pass per domain instead (:mod:`pixelseg.engine.methods.adaptation`)."""
        return tuple(split_outputs(self.forward(model, torch.cat([images, extra])), [len(images), len(extra)]))

    def batch_loss(self, model, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_step(self) -> None:
        """After each optimizer step (an EMA teacher's update)."""

    def evaluated_model(self) -> torch.nn.Module:
        """The network validated each epoch and saved as the run's model."""
        return self.run.model

    def shipped_weights(self, checkpoint: dict) -> dict:
        """The weights saved as the run's model from a checkpoint of this run (those of :meth:`evaluated_model`)."""
        return checkpoint["model"]

    def state_dict(self) -> dict:
        """What the method keeps across ``--resume`` (tensors, numbers, strings: the safe loader's types)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Put back what :meth:`state_dict` saved."""


@register_method("supervised")
class Supervised(TrainingMethod):
    """Per-pixel supervised training: the configured loss on the labelled batch (plus the model's auxiliary heads)."""

    def batch_loss(self, model, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        core = getattr(model, "module", model)  # the model itself, or inside DDP
        return core.training_loss(self.run.loss_fn, self.forward(model, images), masks)
