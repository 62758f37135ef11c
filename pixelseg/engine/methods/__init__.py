"""Training methods: how the trainer turns a batch into a loss. ``train`` runs the same loop (data, steps,
checkpoints, validation, DDP, ``--resume``) for each; a method supplies the loss of a batch, what happens after an
optimizer step, the extra state its checkpoint keeps, and the model that is validated and saved.

A new method is one class: subclass :class:`TrainingMethod`, decorate it with ``@register_method("name")``; its
constructor's keyword arguments after ``run`` become the config keys of ``method:`` (checked, with "did you mean").
"""

from __future__ import annotations

import inspect

from pixelseg.engine.methods.adaptation import ClassBalancedSelfTraining, EntropyMinimisation
from pixelseg.engine.methods.base import (
    METHODS,
    Supervised,
    TrainingMethod,
    ema_decay,
    ema_update,
    frozen_copy,
    register_method,
)
from pixelseg.engine.methods.semi import MeanTeacher
from pixelseg.engine.methods.weak import BoxRefresh, CRFRegularisedScribbles


def method_options(name: str) -> dict[str, object]:
    """The options of training method ``name`` and their defaults (its constructor's keyword arguments)."""
    parameters = inspect.signature(METHODS[name].__init__).parameters
    return {k: p.default for k, p in parameters.items() if k not in ("self", "run")}


def build_method(run) -> TrainingMethod:
    """The configured method for a built run (``run.config.method``)."""
    config = run.config.method
    return METHODS[config.name](run, **config.options)


__all__ = ["METHODS", "BoxRefresh", "CRFRegularisedScribbles", "ClassBalancedSelfTraining", "EntropyMinimisation",
           "MeanTeacher", "Supervised", "TrainingMethod", "build_method", "ema_decay", "ema_update", "frozen_copy",
           "method_options",
           "register_method"]
