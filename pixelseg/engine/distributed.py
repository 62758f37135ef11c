"""Distributed data parallel training and evaluation (PyTorch DDP), launched with torchrun.

``torchrun --nproc_per_node N -m pixelseg train CONFIG`` sets RANK / WORLD_SIZE / LOCAL_RANK; :func:`setup`
joins the process group (gloo on the CPU, nccl on GPUs). Each rank trains on its share of every global batch
(``train.batch_size`` is the global batch), gradients are averaged by DDP, validation shards the images across
ranks and sums the confusion matrices, and only rank 0 writes checkpoints, logs and pictures.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device_type: str) -> Context:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def teardown(wait: bool = True) -> None:
    """Leave the process group, if one was joined. With ``wait`` every rank first waits for the others (rank 0
    may still be writing results), so that no rank tears its gloo threads down under a peer; a process that exits
    with the group still open can abort ("terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def current() -> Context:
    """The context of an already initialised process group (or a single process)."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Context()


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over all ranks (in place; a no-op in a single process)."""
    if current().distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class SyncBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose batch statistics are computed over the whole global batch, on any device.

    PyTorch's ``nn.SyncBatchNorm`` runs on GPUs only; this one all-reduces the per-channel count, sum and sum of
    squares with the differentiable ``torch.distributed.nn`` all-reduce, so CPU (gloo) runs get the statistics a
    single process would compute on the global batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not current().distributed:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dtype = x.dtype  # under bf16 autocast: the statistics and the normalisation in float32 all the same
        x = x.float()
        count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=x.dtype)
        stats = torch.cat([count, x.sum((0, 2, 3)), (x * x).sum((0, 2, 3))])
        with warnings.catch_warnings():  # "deprecated": its replacement is still a private module
            warnings.simplefilter("ignore", FutureWarning)
            stats = all_reduce(stats)
        total, sums, squares = stats[0], stats[1: 1 + x.shape[1]], stats[1 + x.shape[1]:]
        mean = sums / total
        variance = squares / total - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                unbiased = variance * total / (total - 1)
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(unbiased.detach(), self.momentum)
                self.num_batches_tracked += 1
        shape = (1, -1, 1, 1)
        normalised = (x - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.eps)
        if self.affine:
            normalised = normalised * self.weight.view(shape) + self.bias.view(shape)
        return normalised.to(dtype)


class SyncBatchNormAct2d(SyncBatchNorm2d):
    """:class:`SyncBatchNorm2d`, then the dropout and activation of the timm ``BatchNormAct2d`` it replaces.

    timm's RegNet, EfficientNet, MobileNetV3 and others fuse the activation into the norm layer; swapping that layer
    for a plain batch norm would silently remove their ReLUs.
    """

    def __init__(self, norm: nn.BatchNorm2d) -> None:
        super().__init__(norm.num_features, norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
        self.drop, self.act = norm.drop, norm.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(super().forward(x)))


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Every ``BatchNorm2d`` of ``module`` replaced by :class:`SyncBatchNorm2d` (:class:`SyncBatchNormAct2d` for
    timm's ``BatchNormAct2d``) with the same parameters and buffers (the state dict keys do not change)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, SyncBatchNorm2d):
            if hasattr(child, "act"):  # timm's BatchNormAct2d: norm, dropout, activation in one module
                synced = SyncBatchNormAct2d(child)
            else:
                synced = SyncBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                         child.track_running_stats)
            synced.load_state_dict(child.state_dict())
            setattr(module, name, synced)
        else:
            convert_sync_batchnorm(child)
    return module
