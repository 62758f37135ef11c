"""The training loop, in the plain style of torchvision's reference scripts.

``train(config)`` checks the data, builds model, loss, optimizer and schedule, then runs
``train_one_epoch`` and ``evaluate`` in turn, writing into ``train.out_dir``:

- ``last.pt`` every epoch and ``best.pt`` at the best val mIoU (atomic writes; model, optimizer,
  scheduler, scaler, epoch, RNG state, config and history); ``last.pt`` also mid-epoch every
  ``train.checkpoint_every`` steps and when Ctrl-C or SIGTERM stops the run (after the current step), so that
  ``--resume`` continues at that step to the weights an uninterrupted run reaches,
- ``model/`` (safetensors + JSON) from the best checkpoint, loadable with ``pixelseg.load``,
- ``train_config.yaml``: the whole config the run trained with, defaults and ``--set`` overrides included
  (``pixelseg train RUN/train_config.yaml`` runs it again),
- ``log.csv`` (one row per epoch; ``seconds`` is the epoch's training and validation time, an epoch stopped
  and resumed counting its steps on both sides of the stop but not the time in between) and ``curve.png``
  (loss and val mIoU).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from pixelseg.constants import IGNORE_INDEX
from pixelseg.data import open_dataset, require_clean
from pixelseg.data.dataset import SegmentationDataset
from pixelseg.engine import distributed
from pixelseg.engine.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from pixelseg.engine.config import Config
from pixelseg.engine.evaluate import evaluate
from pixelseg.engine.hardware import cpu_has_fast_bf16
from pixelseg.engine.loggers import NullLogger, build_logger, write_log
from pixelseg.engine.methods import TrainingMethod, build_method, ema_decay, ema_update, frozen_copy
from pixelseg.errors import CheckpointError, ConfigError, TrainingDiverged
from pixelseg.io import write_text
from pixelseg.losses import build_loss, class_weights_from_counts
from pixelseg.models import create, save_model
from pixelseg.models.serialization import build_from_config, load_saved
from pixelseg.utils import progress_bar
from pixelseg.visualize import plot_training_curve


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_deterministic(deterministic: bool) -> None:
    """``train.deterministic``: deterministic kernels everywhere (same seed, config and machine -> same metrics).

    On the CPU pixelseg's runs are reproducible either way; on CUDA this turns off cuDNN autotuning and asks
    PyTorch for deterministic kernels (ops without one, such as the backward of bilinear upsampling, warn)."""
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} asked for but no CUDA device is available")
    return torch.device(name)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast precision of ``train.amp``: ``auto`` is bf16 on CPUs with hardware bf16 and on CUDA (fp16
    where the GPU lacks bf16), float32 (None) on other CPUs."""
    if amp == "off":
        return None
    if amp == "auto" and device.type != "cuda":
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None
    if amp == "fp16":
        return torch.float16
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16


def build_optimizer(config: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    """AdamW or SGD with no weight decay on norms and biases, and the encoder at ``optimizer.encoder_lr`` times the
    learning rate (the schedule scales every group alike). The first group is the decoder's weights at ``lr``."""
    settings = config.optimizer
    encoder = getattr(model, "encoder", None)
    if settings.encoder_lr != 1.0 and not isinstance(encoder, torch.nn.Module):
        raise ConfigError(f"optimizer.encoder_lr: {config.model['name']} has no separate encoder (model.encoder) "
                          "to give its own learning rate; leave it at 1")
    in_encoder = {id(p) for p in encoder.parameters()} if settings.encoder_lr != 1.0 else set()
    groups = []
    for part, lr in ((False, settings.lr), (True, settings.lr * settings.encoder_lr)):
        params = [p for p in model.parameters() if p.requires_grad and (id(p) in in_encoder) == part]
        groups += [{"params": [p for p in params if p.ndim > 1], "weight_decay": settings.weight_decay, "lr": lr},
                   {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0, "lr": lr}]
    groups = [group for group in groups if group["params"]]
    if settings.name == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=settings.lr)


def build_scheduler(config: Config, optimizer: torch.optim.Optimizer, total_steps: int):
    """Per-step learning-rate factor: linear warm-up, then poly, cosine or constant decay."""
    settings = config.schedule
    warmup = max(0, settings.warmup_iters)
    floor = settings.min_lr / config.optimizer.lr if config.optimizer.lr else 0.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if settings.name == "poly":
            decayed = (1 - progress) ** settings.power
        elif settings.name == "cosine":
            decayed = 0.5 * (1 + math.cos(math.pi * progress))
        else:
            decayed = 1.0
        return floor + (1 - floor) * decayed

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def open_split(config: Config, split: str) -> SegmentationDataset:
    return open_dataset(config.data.layout, config.data.root, split, **config.data.options)


def class_weights(config: Config, pixel_counts: np.ndarray) -> list[float] | None:
    setting = config.loss.class_weights
    if setting is None:
        return None
    if isinstance(setting, str):
        try:
            return class_weights_from_counts(pixel_counts, setting)
        except ValueError as error:
            raise ConfigError(f"loss.class_weights: {error}") from None
    if isinstance(setting, list) and len(setting) == len(pixel_counts):
        return [float(w) for w in setting]
    raise ConfigError(f"loss.class_weights: expected a method name or {len(pixel_counts)} numbers, got {setting!r}")


def _share_of_labelled_pixels(masks: torch.Tensor, ignore_index: int) -> torch.Tensor | float:
    """Under DDP: this rank's labelled pixels over the mean per rank, so that DDP's average of the ranks' pixel-mean
    losses is the pixel mean over the global batch (as in one process), not a mean of means. 1 in one process."""
    context = distributed.current()
    if not context.distributed:
        return 1.0
    labelled = (masks != ignore_index).sum().to(torch.float64)
    total = distributed.sum_across_ranks(labelled.clone())
    return (labelled * context.world_size / total.clamp_min(1)).to(torch.float32)


class EpochProgress:
    """Where an epoch stands: optimizer steps done, the running loss and the seconds spent on them (kept in
    mid-epoch checkpoints, so that an epoch stopped and resumed logs the time of all its steps)."""

    def __init__(self, steps: int = 0, loss_total: float = 0.0, batches: int = 0, seconds: float = 0.0) -> None:
        self.steps, self.loss_total, self.batches, self.seconds = steps, loss_total, batches, seconds

    def to_dict(self) -> dict:
        return {"steps": self.steps, "loss_total": self.loss_total, "batches": self.batches, "seconds": self.seconds}

    @property
    def mean_loss(self) -> float:
        return self.loss_total / max(self.batches, 1)


def optimizer_step(model, optimizer, scheduler, scaler=None, grad_clip: float | None = None) -> None:
    """One optimizer step on the accumulated gradients (clipped to ``grad_clip``'s global norm after unscaling),
    then the scheduler's step."""
    if grad_clip:
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()


def train_one_epoch(model, method: TrainingMethod, optimizer, scheduler, loader, device, epoch: int,
                    accumulate: int = 1, scaler=None, max_steps: int | None = None, progress: bool = True,
                    done: EpochProgress | None = None,
                    after_step: Callable[[EpochProgress], bool] | None = None,
                    channels_last: bool = False,
                    log_step: Callable[[dict[str, float]], None] | None = None,
                    ema: tuple[torch.nn.Module, float, bool] | None = None,
                    grad_clip: float | None = None) -> EpochProgress:
    """One pass over ``loader`` (the batches after ``done.steps`` optimizer steps of this epoch, when resuming):
    ``method`` (:mod:`pixelseg.engine.methods`) gives each batch's loss and runs after each optimizer step.

    ``channels_last`` hands the batches to the model in channels-last layout (for a model converted to it). The
    scheduler steps once per optimizer step. ``after_step(progress)`` runs after each optimizer step; when it
    returns True the epoch stops there (an interruption). ``log_step(values)`` gets each optimizer step's loss,
    learning rate, seconds waiting for data and seconds of the step. ``ema = (average, decay, warmup)``: the weights'
    exponential moving average, updated after each optimizer step (:func:`ema_decay`, the run's step count from the
    scheduler). ``grad_clip``: the gradients' global L2 norm is
    clipped to it before each optimizer step (``torch.nn.utils.clip_grad_norm_``, on unscaled gradients). Returns
    where the epoch stands."""
    model.train()
    state = done or EpochProgress()
    optimizer.zero_grad(set_to_none=True)
    remaining = (max_steps - state.steps) * accumulate if max_steps else len(loader)
    bar = progress_bar(loader, progress, desc=f"epoch {epoch}", total=min(len(loader), remaining))
    waited = step_started = 0.0
    fetch_started = time.perf_counter()
    for index, (images, masks) in enumerate(bar):
        arrived = time.perf_counter()
        waited += arrived - fetch_started
        step_started = step_started or arrived
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss = method.batch_loss(model, images, masks)  # the model under autocast, the loss in float32
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"training diverged: the loss is {loss.item()} at epoch {epoch}, batch {index}; "
                                   "lower optimizer.lr or set train.grad_clip (or try train.amp=off); the run's "
                                   "last.pt holds its last checkpoint (train.checkpoint_every)")
        state.loss_total += loss.item()
        loss = loss * _share_of_labelled_pixels(masks, getattr(method.run.loss_fn, "ignore_index", IGNORE_INDEX))
        (scaler.scale(loss / accumulate) if scaler else loss / accumulate).backward()
        state.batches += 1
        if (index + 1) % accumulate == 0:
            optimizer_step(model, optimizer, scheduler, scaler, grad_clip)
            method.after_step()
            if ema is not None:
                decay = ema_decay(scheduler.last_epoch - 1, ema[1], ema[2])  # the scheduler has counted this step
                ema_update(ema[0], getattr(model, "module", model), decay)
            state.steps += 1
            bar.set_postfix(loss=f"{state.mean_loss:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if log_step:
                log_step({"train/loss": state.loss_total / max(state.batches, 1), "train/lr":
                          optimizer.param_groups[0]["lr"], "time/data": waited,
                          "time/step": time.perf_counter() - step_started})
            waited = step_started = 0.0
            if max_steps and state.steps >= max_steps:
                break
            if after_step and after_step(state):
                break
        fetch_started = time.perf_counter()
    return state


@contextlib.contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) and SIGTERM ask the run to stop after its current optimizer step instead of killing it.

    Yields ``requested()``. A second Ctrl-C interrupts at once. Outside the main thread (where Python cannot
    install signal handlers) nothing changes."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return

    def handle(signum, frame):
        if flag.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.set()
        if distributed.current().is_main:
            print(f"\npixelseg: {signal.Signals(signum).name} received: stopping after this step and saving last.pt "
                  f"(Ctrl-C again to stop at once)", flush=True)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag.is_set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_sigint(worker_id: int) -> None:
    """Loader workers leave Ctrl-C and SIGTERM (sent to the whole process group by a terminal, ``pkill`` or a job
    scheduler) to the main process, which stops at a step boundary and still needs them; they end with the loader."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@dataclass
class Run:
    """Everything built from the config before the first step: data, model, loss, optimiser and schedule."""

    config: Config
    device: torch.device
    context: distributed.Context
    out_dir: Path
    train_set: SegmentationDataset
    val_set: SegmentationDataset | None
    model: torch.nn.Module  # the model itself: what is saved and evaluated
    trained: torch.nn.Module  # what the steps call: the model, or DDP around it
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    amp_dtype: torch.dtype | None
    steps_per_epoch: int
    progress: bool
    logger: NullLogger
    method: TrainingMethod | None = None  # how batches become losses (method.name); built last, from the run
    ema: torch.nn.Module | None = None  # the weights' moving average (train.ema), validated and shipped


def setup_process(config: Config, progress: bool) -> tuple[torch.device, distributed.Context, bool]:
    """Threads, device, the process group under torchrun, seeds and deterministic kernels."""
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = select_device(config.train.device)
    context = distributed.setup(device.type)
    if context.distributed and device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    if context.is_main:
        check_output_dir(Path(config.train.out_dir))
    if config.train.batch_size % context.world_size:
        raise ConfigError(f"train.batch_size {config.train.batch_size} (the global batch) is not divisible by the "
                          f"{context.world_size} processes")
    seed_everything(config.train.seed)
    set_deterministic(config.train.deterministic)
    return device, context, progress and context.is_main


def build_data(config: Config, progress: bool):
    """The checked training and validation sets, and the training set's class pixel counts."""
    train_set = open_split(config, config.data.train_split)
    report = require_clean(train_set, progress=progress)
    val_set = None
    if config.data.val_split:
        val_set = open_split(config, config.data.val_split)
        require_clean(val_set, progress=progress)
    return train_set, val_set, report.class_pixels


def build_model(config: Config, train_set: SegmentationDataset, resume: bool | str | Path) -> torch.nn.Module:
    """The architecture for the dataset's classes, with the meta inference needs (normalisation from the encoder's
    pretrained config, classes, the data it was trained on); ``train.init_from``'s weights unless resuming."""
    classes = train_set.classes
    in_channels = int(config.model.get("in_channels", 3))
    if train_set.channels != in_channels:
        raise ConfigError(f"model.in_channels is {in_channels} but the dataset's images have {train_set.channels} "
                          f"channels (data.options channels / extra_channels); set model.in_channels: "
                          f"{train_set.channels}")
    model = create(config.model["name"], num_classes=classes.num_classes,
                   **{k: v for k, v in config.model.items() if k != "name"})
    model.meta.update({
        "classes": classes.to_dict(),
        "inference_scale": config.eval.scale or config.data.base_scale,
        "inference_long_side": config.eval.long_side,
        "data": {"layout": train_set.name, "root": str(Path(train_set.root).resolve()), "options": config.data.options,
                 "val_split": config.data.val_split},
    })
    if config.train.init_from and not resume:
        initialise_from(model, Path(config.train.init_from))
    return model


def place_model(config: Config, model: torch.nn.Module, device: torch.device, context: distributed.Context):
    """``(model, trained)``: synced batch norms under torchrun, the device, channels-last, DDP around it."""
    if context.distributed and config.train.sync_bn:
        if device.type == "cuda":  # timm's version keeps the activation of its fused BatchNormAct2d layers
            from timm.layers import convert_sync_batchnorm as timm_convert_sync_batchnorm

            model = timm_convert_sync_batchnorm(model)
        else:
            distributed.convert_sync_batchnorm(model)
    model.to(device)
    if config.train.channels_last:  # 1.1-1.5x faster training steps on the CPU (docs/performance.md)
        model.to(memory_format=torch.channels_last)
    trained = model
    if context.distributed:
        device_ids = [device] if device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    return model, trained


def count_steps(config: Config, train_set: SegmentationDataset) -> int:
    """Optimizer steps per epoch (refused when the data cannot fill one step)."""
    if len(train_set) < config.train.batch_size:
        raise ConfigError(f"train.batch_size {config.train.batch_size} is larger than the {len(train_set)} "
                          f"training samples")
    steps = len(train_set) // config.train.batch_size // config.train.accumulate
    if config.train.steps_per_epoch:
        steps = min(steps, config.train.steps_per_epoch)
    if steps == 0:
        raise ConfigError(f"train.accumulate {config.train.accumulate} x train.batch_size {config.train.batch_size} "
                          f"is more than the {len(train_set)} training samples: no optimizer step would run")
    return steps


def weight_average(run: Run) -> torch.nn.Module:
    """A frozen copy of the model whose weights follow ``train.ema``'s exponential moving average (Polyak
    averaging, as timm's ModelEma): validated each epoch and shipped instead of the last step's weights."""
    if run.method.evaluated_model() is not run.model:
        raise ConfigError(f"train.ema: method {run.config.method.name} already validates and ships a moving average "
                          "of its own (its teacher); leave train.ema at 0")
    return frozen_copy(run.model)


def build_run(config: Config, resume: bool | str | Path = False, progress: bool = True) -> Run:
    """Data, model, loss, optimiser, schedule and precision, in that order, as ``config`` says."""
    device, context, progress = setup_process(config, progress)
    train_set, val_set, class_pixels = build_data(config, progress)
    model, trained = place_model(config, build_model(config, train_set, resume), device, context)
    classes = train_set.classes
    loss_fn = build_loss(config.loss.weights, class_weights(config, class_pixels), classes.ignore_index,
                         options=config.loss.options).to(device)
    train_set.transform = config.data.augmentation(model.meta["mean"], model.meta["std"])
    train_set.seed = config.train.seed
    if config.data.cache:
        train_set.cache_in_memory(progress=progress)
    steps_per_epoch = count_steps(config, train_set)
    out_dir = Path(config.train.out_dir)
    if context.is_main:
        check_free_space(out_dir, model, config.optimizer.name)
        write_config(config, out_dir / "train_config.yaml")
    optimizer = build_optimizer(config, model)
    scheduler = build_scheduler(config, optimizer, steps_per_epoch * config.train.epochs)
    amp_dtype = autocast_dtype(config.train.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    if context.is_main:
        precision = {None: "float32", torch.bfloat16: "bfloat16 autocast", torch.float16: "float16 autocast"}
        print(f"pixelseg: training on {device} in {precision[amp_dtype]} (train.amp: {config.train.amp}); "
              f"encoder weights: {model.meta.get('encoder_weights', 'none (random initialisation)')}", flush=True)
    logger = build_logger(config.train.logger, out_dir, context.is_main)
    run = Run(config, device, context, out_dir, train_set, val_set, model, trained, loss_fn, optimizer, scheduler,
              scaler, amp_dtype, steps_per_epoch, progress, logger)
    run.method = build_method(run)
    if config.train.ema:
        run.ema = weight_average(run)
    if context.is_main and config.method.name != "supervised":
        print(f"pixelseg: training method {config.method.name} {config.method.options or ''}".rstrip(), flush=True)
    return run


class TrainingState:
    """Where a run stands: epochs finished, best val mIoU, the log's rows and, mid-epoch, the epoch's progress.

    :meth:`state_dict` is what ``last.pt`` and ``best.pt`` hold (with the model, optimiser, schedule, scaler, RNG
    states and config); :meth:`load_state_dict` puts a run back where such a checkpoint left it (``--resume``)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.epoch, self.best_miou, self.history = 0, -1.0, []
        self.partial: EpochProgress | None = None  # the resumed epoch's steps before the stop

    def state_dict(self, finished_epoch: int | None = None, partial: EpochProgress | None = None) -> dict:
        run = self.run
        return {
            "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict() if run.scaler else None,
            "epoch": self.epoch if finished_epoch is None else finished_epoch, "best_miou": self.best_miou,
            "history": self.history, "rng": rng_state(), "config": run.config.to_dict(),
            "model_config": run.model.config, "model_meta": run.model.meta,
            "partial_epoch": partial.to_dict() if partial else None, "method": run.method.state_dict(),
            "ema": run.ema.state_dict() if run.ema is not None else None,
        }

    def load_state_dict(self, checkpoint: dict, source: str | Path) -> None:
        run = self.run
        if checkpoint["model_config"] != run.model.config:
            raise CheckpointError(f"{source}: checkpoint is for {checkpoint['model_config']}, "
                                  f"the config builds {run.model.config}")
        run.model.load_state_dict(checkpoint["model"])
        run.optimizer.load_state_dict(checkpoint["optimizer"])
        run.scheduler.load_state_dict(checkpoint["scheduler"])
        if run.scaler and checkpoint.get("scaler"):
            run.scaler.load_state_dict(checkpoint["scaler"])
        run.method.load_state_dict(checkpoint.get("method") or {})
        if run.ema is not None:  # a checkpoint saved without train.ema starts the average at its weights
            run.ema.load_state_dict(checkpoint.get("ema") or checkpoint["model"])
        restore_rng_state(checkpoint["rng"])
        self.epoch, self.best_miou, self.history = checkpoint["epoch"], checkpoint["best_miou"], checkpoint["history"]
        if checkpoint.get("partial_epoch"):  # saved mid-epoch: continue after its last optimizer step
            self.partial = EpochProgress(**checkpoint["partial_epoch"])


def epoch_loader(run: Run, epoch: int, done: EpochProgress | None) -> torch.utils.data.DataLoader:
    """The epoch's batches after the ``done.steps`` already taken. One shuffle for any number of processes: rank r
    takes every world_size-th image of the epoch's order, so the ranks' batches together are one process's batch."""
    config, context = run.config, run.context
    run.train_set.set_epoch(epoch)
    sampler = torch.utils.data.DistributedSampler(run.train_set, num_replicas=context.world_size, rank=context.rank,
                                                  shuffle=True, seed=config.train.seed, drop_last=True)
    sampler.set_epoch(epoch)
    rank_batch = config.train.batch_size // context.world_size
    order = list(sampler)[done.steps * config.train.accumulate * rank_batch if done else 0:]
    return torch.utils.data.DataLoader(
        run.train_set, batch_size=rank_batch, sampler=order, drop_last=True, num_workers=config.data.workers,
        pin_memory=run.device.type == "cuda", worker_init_fn=_ignore_sigint,
        generator=torch.Generator().manual_seed(config.train.seed + epoch))  # leaves the global RNG alone


def run_epoch(run: Run, state: TrainingState, epoch: int, stop_requested: Callable[[], bool]) -> EpochProgress:
    """One epoch of optimizer steps (the rest of it, when resuming mid-epoch); ``last.pt`` every
    ``train.checkpoint_every`` steps and when a stop is requested."""
    done, state.partial = state.partial, None
    started = time.time() - (done.seconds if done else 0.0)  # a resumed epoch counts its earlier steps

    def after_step(progress_now: EpochProgress) -> bool:
        stop = stop_requested()
        if run.context.distributed:  # every rank stops after the same step
            stop = bool(distributed.sum_across_ranks(torch.tensor([float(stop)], device=run.device)) > 0)
        every = run.config.train.checkpoint_every
        if run.context.is_main and (stop or (every and progress_now.steps % every == 0)):
            progress_now.seconds = time.time() - started
            save_checkpoint(run.out_dir / "last.pt", state.state_dict(epoch - 1, progress_now))
        return stop

    progress_now = train_one_epoch(run.trained, run.method, run.optimizer, run.scheduler,
                                   epoch_loader(run, epoch, done), run.device, epoch, run.config.train.accumulate,
                                   run.scaler, run.steps_per_epoch, run.progress, done, after_step,
                                   run.config.train.channels_last,
                                   log_step=lambda values: run.logger.step(run.scheduler.last_epoch, values),
                                   ema=None if run.ema is None else (run.ema, run.config.train.ema,
                                                                      run.config.train.ema_warmup),
                                   grad_clip=run.config.train.grad_clip)
    progress_now.seconds = time.time() - started
    return progress_now


def end_epoch(run: Run, state: TrainingState, epoch: int, progress_now: EpochProgress) -> None:
    """Validation when due, the log's row, ``last.pt`` (and ``best.pt`` at a better val mIoU), the curve."""
    config, started = run.config, time.time() - progress_now.seconds
    train_loss = _mean_across_ranks(progress_now.mean_loss, run.device)
    row = {"epoch": epoch, "train_loss": round(train_loss, 6), "lr": run.optimizer.param_groups[0]["lr"],
           "val_miou": None, "val_pixel_accuracy": None}
    validate = run.val_set is not None and (epoch % config.train.val_every == 0 or epoch == config.train.epochs)
    if validate:
        evaluated = run.ema if run.ema is not None else run.method.evaluated_model()
        metrics = evaluate(evaluated, run.val_set, tile=config.eval.tile, overlap=config.eval.overlap,
                           progress=run.progress, workers=config.data.workers).metrics
        row["val_miou"] = round(metrics["miou"], 6)
        row["val_pixel_accuracy"] = round(metrics["pixel_accuracy"], 6)
    row["seconds"] = round(time.time() - started, 1)
    state.history.append(row)
    state.epoch = epoch
    improved = validate and row["val_miou"] > state.best_miou or (run.val_set is None and epoch == config.train.epochs)
    if improved and row["val_miou"] is not None:
        state.best_miou = row["val_miou"]
    if run.context.is_main:
        checkpoint = state.state_dict()
        save_checkpoint(run.out_dir / "last.pt", checkpoint)
        if improved:
            save_checkpoint(run.out_dir / "best.pt", checkpoint)
        write_log(run.out_dir / "log.csv", state.history)
        run.logger.epoch(epoch, row)
        plot_training_curve(state.history, run.out_dir / "curve.png")
        shown = f", val mIoU {100 * row['val_miou']:.2f} %" if row["val_miou"] is not None else ""
        print(f"epoch {epoch}/{config.train.epochs}: loss {train_loss:.4f}{shown} ({row['seconds']} s)", flush=True)
    distributed.barrier(run.context)


def save_model_folder(run: Run) -> None:
    """``model/`` (safetensors + JSON) from ``best.pt`` (or ``last.pt`` with ``train.keep: last``): what
    ``pixelseg.load`` and the other commands take. A val figure of the best epoch is picked by that val split; a run
    whose val split is also its reported figure (a held-out sequence) keeps the last epoch instead."""
    if run.context.is_main:
        source = run.out_dir / ("last.pt" if run.config.train.keep == "last" else "best.pt")
        kept = load_checkpoint(source)
        weights = kept.get("ema") or run.method.shipped_weights(kept)  # the average, the model's or a teacher's
        save_model(build_from_config(kept["model_config"], kept["model_meta"], weights, source), run.out_dir / "model")
    distributed.barrier(run.context)


def _stopped(run: Run, message: str, barrier: bool = True) -> KeyboardInterrupt:
    if barrier:  # mid-epoch every rank stops after the same step (run_epoch agrees on it); after an epoch each
        distributed.barrier(run.context)  # rank's own signal decides, as torchrun signals them all
    if run.context.is_main:
        print(f"pixelseg: {message} continue with `pixelseg train CONFIG --resume`", flush=True)
    return KeyboardInterrupt()


def train(config: Config, resume: bool | str | Path = False, progress: bool = True) -> Path:
    """Train as ``config`` says; returns the run directory. ``resume``: True for ``out_dir/last.pt``, or a path."""
    run = build_run(config, resume, progress)
    state = TrainingState(run)
    if resume:
        source = run.out_dir / "last.pt" if resume is True else Path(resume)
        state.load_state_dict(load_checkpoint(source), source)
    with stop_requests() as stop_requested, contextlib.closing(run.logger):
        for epoch in range(state.epoch + 1, config.train.epochs + 1):
            progress_now = run_epoch(run, state, epoch, stop_requested)
            if progress_now.steps < run.steps_per_epoch:  # stopped by Ctrl-C or SIGTERM; last.pt holds this step
                raise _stopped(run, f"stopped in epoch {epoch} after step {progress_now.steps}/"
                                    f"{run.steps_per_epoch}; {run.out_dir / 'last.pt'} saved:")
            end_epoch(run, state, epoch, progress_now)
            if stop_requested() and epoch < config.train.epochs:  # asked during validation or the last step
                raise _stopped(run, f"stopped after epoch {epoch};", barrier=False)
    save_model_folder(run)
    return run.out_dir


def _mean_across_ranks(value: float, device: torch.device) -> float:
    """The mean of a per-rank number over all ranks (the number itself in a single process)."""
    context = distributed.current()
    if not context.distributed:
        return value
    return float(distributed.sum_across_ranks(torch.tensor([value], device=device, dtype=torch.float64))) / (
        context.world_size)


def initialise_from(model: torch.nn.Module, source: Path) -> None:
    """Copy the weights of a saved model or checkpoint of the same architecture into ``model`` (fine-tuning)."""
    try:
        trained = load_saved(source)
    except CheckpointError as error:
        raise ConfigError(f"train.init_from: {error}") from None
    if trained.config != model.config:
        raise ConfigError(f"train.init_from: {source} holds {trained.config}, the config builds {model.config}")
    model.load_state_dict(trained.state_dict())


def write_config(config: Config, path: Path) -> None:
    """The run's resolved config as YAML that ``load_config`` reads back to the same config (written atomically)."""
    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def check_output_dir(out_dir: Path) -> None:
    """Fail before training, not after it, when the run folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_bytes(b"0" * 1024)
        probe.unlink()
        for stale in out_dir.glob(".*.tmp*"):  # left by a run killed while writing (io.atomic_path); never read
            stale.unlink(missing_ok=True)
    except OSError as error:
        raise ConfigError(f"train.out_dir {out_dir}: cannot write there ({error})") from None


def check_free_space(out_dir: Path, model: torch.nn.Module, optimizer_name: str) -> None:
    """Fail before training when the run folder's disk cannot hold the checkpoints the run will write."""
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    checkpoint_bytes = model_bytes * (3 if optimizer_name == "adamw" else 2)  # weights + optimizer moments
    # last.pt, best.pt, the temporary copy of one of them while it is rewritten, and model/ at the end.
    needed = 3 * checkpoint_bytes + model_bytes + (16 << 20)  # + logs, curve and slack
    free = shutil.disk_usage(out_dir).free
    if free < needed:
        raise ConfigError(f"train.out_dir {out_dir}: {free / 2**20:.0f} MiB free on its disk, but the run needs "
                          f"about {needed / 2**20:.0f} MiB for its checkpoints; free some space or choose another "
                          f"folder")
