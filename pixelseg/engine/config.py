"""The training config: a readable YAML file, checked key by key, with ``--set key=value`` overrides.

An unknown key or a value of the wrong type is a :class:`ConfigError` that names the key and, for a typo,
the closest valid one. See ``configs/`` for complete examples.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pixelseg.data.transforms import Compose, training_transform
from pixelseg.errors import ConfigError
from pixelseg.utils import closest


@dataclass
class DataConfig:
    layout: str = "auto"  # a dataset layout (pixelseg.data.LAYOUTS), or auto: detected from the folders
    root: str | None = None  # a path, or a name under $PIXELSEG_DATA (default ../shared/data)
    train_split: str = "train"  # the split trained on: a folder, or a list in the splits_dir option
    val_split: str | None = "val"  # the split validated on (null: none); best held-out whole sequences
    options: dict = field(default_factory=dict)  # layout options: num_classes, classes, value_map, splits_dir
    crop_size: list = field(default_factory=lambda: [256, 256])  # height, width
    base_scale: float = 1.0  # train (and predict) at this fraction of the original size
    scale_range: list = field(default_factory=lambda: [0.5, 2.0])  # random scale around base_scale
    flip: bool = True  # random horizontal flips
    rotate90: bool = False  # random 90-degree turns (with flip: all 8 symmetries); for images without an up
    color_jitter: float = 0.3  # brightness, contrast and saturation jitter (0: none)
    class_uniform_crop: float = 0.0  # chance that a crop centres on a pixel of a class drawn uniformly (0: none)
    workers: int = 2  # data loader processes
    cache: bool = False  # decode every training image and mask once, keep them in memory (small datasets)
    unlabelled: str | None = None  # a folder of images without labels (method: mean_teacher)

    def augmentation(self, mean, std, labelled: bool = True) -> Compose:
        """The training transform these keys describe, normalising with ``mean``/``std``. Unlabelled images
        (``labelled=False``) get no colour jitter (the methods make their own photometric views) and plain random
        crops (no labels to centre them on)."""
        return training_transform(tuple(self.crop_size), tuple(self.scale_range), self.base_scale, self.flip,
                                  self.color_jitter if labelled else 0.0, mean, std,
                                  self.class_uniform_crop if labelled else 0.0, rotate90=self.rotate90)


@dataclass
class LossConfig:
    """The loss section: a weight per registered loss (``ce: 1.0``, ``dice: 0.5``, ``lovasz: 1.0``: any name in
    :data:`pixelseg.losses.LOSSES`), a loss's options as ``NAME_OPTION`` (``focal_gamma: 2.0``) and the class weights
    of the losses that take them. Cross-entropy has weight 1 unless the section says otherwise."""

    weights: dict = field(default_factory=lambda: {"ce": 1.0})
    options: dict = field(default_factory=dict)  # loss name -> {option: value}
    class_weights: Any = None  # null | median_frequency | enet | inverse_sqrt | [w0, w1, ...]

    @classmethod
    def from_mapping(cls, values: dict, prefix: str = "loss.") -> LossConfig:
        from pixelseg.losses import LOSSES, loss_options

        if not isinstance(values, dict):
            raise ConfigError(f"{prefix.rstrip('.')}: expected a mapping, got {values!r}")
        config = cls()
        option_keys = {f"{name}_{option}": (name, option) for name in LOSSES for option in loss_options(name)}
        for key, value in values.items():
            if key == "class_weights":
                config.class_weights = value
            elif key in ("weights", "options") and isinstance(value, dict):  # a stored config (to_dict)
                getattr(config, key).update(value)
            elif key in LOSSES:
                config.weights[key] = _check_value(prefix + key, value, float)
            elif key in option_keys:
                name, option = option_keys[key]
                config.options.setdefault(name, {})[option] = value
            else:
                valid = ["class_weights", *LOSSES, *option_keys]
                raise ConfigError(f"unknown config key {prefix + str(key)!r}{closest(key, valid)}; valid keys under "
                                  f"loss: {', '.join(valid)} (a loss's weight, NAME_OPTION, class_weights)")
        return config


@dataclass
class MethodConfig:
    """The method section: ``name`` (a registered training method, :data:`pixelseg.engine.methods.METHODS`:
    ``supervised`` by default, ``mean_teacher``) and that method's options by name (``threshold: 0.95``)."""

    name: str = "supervised"
    options: dict = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: dict, prefix: str = "method.") -> MethodConfig:
        from pixelseg.engine.methods import METHODS, method_options

        if not isinstance(values, dict):
            raise ConfigError(f"{prefix.rstrip('.')}: expected a mapping, got {values!r}")
        name = values.get("name", "supervised")
        if name not in METHODS:
            raise ConfigError(f"{prefix}name: unknown training method {name!r}{closest(str(name), METHODS)}; "
                              f"choose from {', '.join(METHODS)}")
        defaults = method_options(name)
        options = dict(values.get("options") or {})  # a stored config (to_dict)
        for key, value in values.items():
            if key in ("name", "options"):
                continue
            if key not in defaults:
                valid = ["name", *defaults]
                raise ConfigError(f"unknown config key {prefix + str(key)!r}{closest(key, valid)}; method {name!r} "
                                  f"takes: {', '.join(valid)}")
            options[key] = _check_value(prefix + key, value, type(defaults[key])) if defaults[key] is not None \
                else value
        return cls(name, options)


@dataclass
class OptimizerConfig:
    name: str = "adamw"  # adamw | sgd
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 1e-4  # on weights, not on norms and biases
    momentum: float = 0.9  # SGD (Nesterov) momentum
    encoder_lr: float = 1.0  # the pretrained encoder's learning rate as a fraction of lr (0.1: fine-tune it gently)


@dataclass
class ScheduleConfig:
    name: str = "poly"  # poly | cosine | constant
    warmup_iters: int = 0  # linear warm-up, in optimizer steps
    power: float = 0.9  # poly decay exponent
    min_lr: float = 0.0  # the floor the schedule decays to


@dataclass
class TrainConfig:
    epochs: int = 50  # passes over the training split
    batch_size: int = 8  # the global batch (split over the processes under torchrun)
    accumulate: int = 1  # gradient accumulation steps
    amp: str = "auto"  # auto: bf16 on CUDA and on CPUs with AMX / AVX512-BF16, float32 elsewhere
    seed: int = 0  # weights, shuffling and augmentation all follow from it
    val_every: int = 1  # validate every N epochs (and after the last)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    out_dir: str = "runs/run"  # last.pt, best.pt, model/, log.csv, curve.png, train_config.yaml
    steps_per_epoch: int | None = None  # cap on optimizer steps per epoch (quick runs)
    threads: int | None = None  # CPU threads for torch (default: all cores)
    init_from: str | None = None  # start from these weights (model dir or checkpoint of the same architecture)
    sync_bn: bool = True  # under torchrun: batch-norm statistics over the global batch, not each rank's share
    checkpoint_every: int | None = None  # also save last.pt every N optimizer steps inside an epoch (long epochs)
    deterministic: bool = False  # deterministic kernels (cuDNN autotuning off): same seed -> same metrics on GPUs too
    channels_last: bool = True  # weights and batches in channels-last layout: same arithmetic, faster convolutions
    logger: str = "none"  # none, or tensorboard: per-step loss, lr, data and step time, per-epoch metrics
    keep: str = "best"  # model/ from: best (the best val mIoU) or last (the last epoch, unpicked by the val split)
    ema: float = 0.0  # validate and ship an exponential moving average of the weights, this decay per step (0: off)
    ema_warmup: bool = True  # its decay ramps as min(1 - 1/(step + 1), ema): no memory of the starting weights
    grad_clip: float | None = None  # clip the gradients' global L2 norm to this before each step (null: off)


@dataclass
class EvalConfig:
    scale: float | None = None  # predict at this fraction of the original size (default data.base_scale)
    long_side: int | None = None  # or: resize each image's longer side to this many pixels (photos of any size)
    tile: list | None = None  # sliding-window tile [height, width]; null predicts the whole image
    overlap: float = 0.33  # sliding-window overlap (0..1)


@dataclass
class Config:
    model: dict = field(default_factory=lambda: {"name": "unet", "encoder": "resnet18"})
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_value(key: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation`` where that is lossless, else a ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_value(key, value, option)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation in (list, dict):
        if isinstance(value, annotation):
            return value
    else:
        return value
    expected = getattr(annotation, "__name__", str(annotation))
    raise ConfigError(f"{key}: expected {expected}, got {value!r}")


CHOICES = {
    "optimizer.name": ("adamw", "sgd"),
    "schedule.name": ("poly", "cosine", "constant"),
    "train.amp": ("auto", "bf16", "fp16", "off"),
    "train.keep": ("best", "last"),
}


def choices(key: str) -> tuple[str, ...]:
    """The valid values of a config key that takes one of a few; the layouts come from their registry."""
    if key == "data.layout":
        from pixelseg.data.layouts import LAYOUTS

        return ("auto", *LAYOUTS)
    if key == "train.logger":
        from pixelseg.engine.loggers import LOGGERS

        return tuple(LOGGERS)
    return CHOICES.get(key, ())


def _build(cls: type, values: dict, prefix: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown config key {prefix + str(key)!r}{closest(key, fields)}; "
                              f"valid keys under {prefix.rstrip('.') or 'the top level'}: {', '.join(fields)}")
        hint = hints[key]
        if hint in (LossConfig, MethodConfig):  # their keys come from the loss / training-method registry
            kwargs[key] = hint.from_mapping(value or {}, f"{prefix}{key}.")
            continue
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, f"{prefix}{key}.")
            continue
        if prefix + key == "train.amp" and isinstance(value, bool):  # YAML 1.1 reads `off` / `no` as false
            value = "auto" if value else "off"
        checked = _check_value(prefix + key, value, hint)
        allowed = choices(prefix + key)
        if allowed and checked not in allowed:
            raise ConfigError(f"{prefix + key}: {checked!r} is not one of {', '.join(allowed)}"
                              f"{closest(checked, allowed)}")
        if prefix + key in PROBABILITIES and not 0 <= checked <= 1:
            raise ConfigError(f"{prefix + key}: {checked!r} is a probability, between 0 and 1")
        if prefix + key in POSITIVE and checked is not None and not checked > 0:
            raise ConfigError(f"{prefix + key}: {checked!r} must be above 0{POSITIVE[prefix + key]}")
        kwargs[key] = checked
    return cls(**kwargs)


PROBABILITIES = {"data.class_uniform_crop", "train.ema"}  # keys checked to lie in [0, 1]
POSITIVE = {"train.grad_clip": " (or null: off)", "optimizer.encoder_lr": ""}  # keys checked to be above 0 when set


def config_from_dict(values: dict) -> Config:
    config = _build(Config, values, "")
    if "name" not in config.model:
        raise ConfigError("model.name is required (`pixelseg models` lists the architectures)")
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, for example train.epochs=10")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Set ``section.key=value`` pairs (values parsed as YAML) in a raw config mapping."""
    for text in overrides:
        path, value = parse_override(text)
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {part} is not a section")
        node[path[-1]] = value
    return values


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or start from the defaults when ``path`` is None) and apply overrides."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config is a mapping of sections (model, data, loss, ...)")
    values = apply_overrides(values, overrides or [])
    try:
        return config_from_dict(values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}" if path else str(error)) from None


def _field_comments(cls: type) -> dict[str, str]:
    """The comment at the end of each field's line in the dataclass source (what a user reads in this file)."""
    import inspect
    import re

    comments = {}
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def _loss_reference() -> list[str]:
    from pixelseg.losses import LOSSES, loss_options

    lines = ["## loss", "", "A weight per loss (the loss is their weighted sum; `ce` is 1 unless set), each loss's "
             "options as `NAME_OPTION`, and `class_weights` (`null`, `median_frequency`, `enet`, `inverse_sqrt` or "
             "one number per class) for the losses that use them.", "",
             "| key | default | options (`NAME_OPTION`, default) | loss |", "|---|---|---|---|"]
    for name, factory in LOSSES.items():
        options = ", ".join(f"`{name}_{k}` ({v})" for k, v in loss_options(name).items())
        summary = (factory.__doc__ or "").strip().splitlines()[0]
        lines.append(f"| `{name}` | `{LossConfig().weights.get(name, 0.0)}` | {options} | {summary} |")
    return [*lines, ""]


def _method_reference() -> list[str]:
    from pixelseg.engine.methods import METHODS, method_options

    lines = ["## method", "", "`name`: the training method (`supervised` unless set; docs/extending.md adds one), and "
             "that method's options as keys of this section (`threshold: 0.9`).", "",
             "| `name` | options (default) | method |", "|---|---|---|"]
    for name, cls in METHODS.items():
        options = ", ".join(f"`{k}` ({v})" for k, v in method_options(name).items()) or "none"
        summary = (cls.__doc__ or "").strip().replace("\n", " ")
        summary = " ".join(summary.split())
        lines.append(f"| `{name}` | {options} | {summary} |")
    return [*lines, ""]


def reference_markdown() -> str:
    """docs/config.md: every key of the config with its type, default, choices and meaning, from the dataclasses."""
    lines = ["# Training config reference", "",
             "Generated from `pixelseg/engine/config.py` by `python scripts/config_reference.py > docs/config.md` "
             "(a test checks it is up to date). A config is a YAML file with these sections; every key is "
             "optional except `model.name`, and `--set section.key=value` overrides any of them.", ""]
    lines += ["## model", "", "`name` (an architecture from `pixelseg models`) and that architecture's arguments "
              "(`encoder`, `pretrained`, `decoder_channels`, ...: its docstring lists them); a key it does not take "
              "is refused with the closest valid one.", ""]
    for section in dataclasses.fields(Config):
        if section.name == "model":
            continue
        if section.name in ("loss", "method"):
            lines += _loss_reference() if section.name == "loss" else _method_reference()
            continue
        cls = typing.get_type_hints(Config)[section.name]
        comments = _field_comments(cls)
        lines += [f"## {section.name}", "", "| key | type | default | choices | meaning |", "|---|---|---|---|---|"]
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
            kind = getattr(hints[item.name], "__name__", str(hints[item.name])).replace("typing.", "")
            kind = kind.replace(" | ", " or ")
            allowed = ", ".join(choices(f"{section.name}.{item.name}"))
            meaning = comments.get(item.name, "").replace(" | ", ", ").replace("|", "\\|")
            lines.append(f"| `{item.name}` | {kind} | `{yaml.safe_dump(default, default_flow_style=True).strip()}` "
                         f"| {allowed} | {meaning} |".replace("\n...", ""))
        lines.append("")
    return "\n".join(lines)

