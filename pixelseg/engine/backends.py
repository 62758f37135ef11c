"""Inference backends: one trained model, three ways to run it on the CPU (or GPU), the same class maps.

``with_backend(model, "eager" | "onnx" | "compile")`` returns a :class:`SegmentationModel` that predict, eval,
cutout and serve use like any other:

- ``eager``: batch norms folded into the convolutions before them, weights and inputs in channels-last memory
  order (oneDNN's fast layout), run under ``torch.inference_mode``.
- ``onnx``: the model exported to ONNX (dynamic batch, height and width) and run by onnxruntime with all graph
  optimisations. ``pixelseg export MODEL model.onnx`` writes the file, with the classes and normalisation in its
  metadata, and ``pixelseg.load("model.onnx")`` reads it back.
- ``compile``: ``torch.compile`` (inductor, with weight freezing) of the eager model; the first call of each new
  input size compiles (tens of seconds), later calls are fast.

``precision="bf16"`` runs the eager and compile paths under bfloat16 autocast, with the convolutions' and linear
layers' weights stored in bfloat16 once instead of cast on every call: much faster where the CPU has bf16
instructions (AVX512-BF16, AMX), but the class maps are no longer identical to float32's
(docs/performance.md gives the agreement measured on CamVid).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixelseg.engine.hardware import separate_compile_cache
from pixelseg.errors import CheckpointError, ConfigError
from pixelseg.inference import input_channels
from pixelseg.io import atomic_path
from pixelseg.models.base import SegmentationModel
from pixelseg.utils import closest

PRECISIONS = ("fp32", "bf16", "int8")  # int8: an ONNX file quantised by `pixelseg export --int8`


def fold_batch_norms(model: nn.Module, example: torch.Tensor, with_activation: bool = True) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d into that convolution's weights and bias (in place;
    the BatchNorm becomes an Identity). ``with_activation``: timm's ``BatchNormAct2d`` too (a batch norm with its
    activation; it becomes that activation). Pairs are found by running ``example`` through the model: a batch norm
    whose input is the very tensor a convolution returned, and nothing else uses that tensor (FC-DenseNet feeds a
    convolution's output both to a pre-activation norm and, unnormalised, to a concatenation; folding would change
    the concatenated features). Returns the number folded.

    Only for inference (eval mode): the folded convolution computes ``gamma * (conv(x) - mean) / std + beta``.
    """
    conv_of_node: dict = {}  # autograd node of a convolution's output -> that convolution
    candidates: list[tuple[nn.Conv2d, nn.BatchNorm2d, object]] = []

    def after_conv(module, inputs, output):
        if output.grad_fn is not None:
            conv_of_node[output.grad_fn] = module

    def before_norm(module, inputs):
        conv = conv_of_node.get(inputs[0].grad_fn)  # the norm's input is the very tensor a convolution returned
        if conv is not None:
            candidates.append((conv, module, inputs[0].grad_fn))

    hooks = [m.register_forward_hook(after_conv) for m in model.modules() if type(m) is nn.Conv2d]
    norms = _foldable_norms() if with_activation else (nn.BatchNorm2d,)
    hooks += [m.register_forward_pre_hook(before_norm) for m in model.modules() if type(m) in norms]
    try:
        with torch.enable_grad():  # the autograd graph records who uses each tensor
            outputs = model.eval()(example.detach().requires_grad_(True))
    finally:
        for hook in hooks:
            hook.remove()
        conv_of_node.clear()
    uses = _uses_per_autograd_node(outputs)
    pairs = [(conv, norm) for conv, norm, node in candidates if uses.get(node) == 1]

    norms_used = {}
    for conv, norm in pairs:  # a norm that follows several convolutions (shared module) cannot be folded
        norms_used.setdefault(id(norm), set()).add(id(conv))
    parents = _parents(model)
    folded = set()
    for conv, norm in pairs:
        if id(norm) in folded or len(norms_used[id(norm)]) > 1 or not norm.track_running_stats:
            continue
        scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps) if norm.affine else \
            1 / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias.detach() if norm.affine else torch.zeros_like(scale)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
        with torch.no_grad():
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter((bias - norm.running_mean) * scale + shift)
        parent, name = parents[id(norm)]
        setattr(parent, name, nn.Identity() if type(norm) is nn.BatchNorm2d else norm.act)  # drop: none in eval
        folded.add(id(norm))
    return len(folded)


def _parents(model: nn.Module) -> dict[int, tuple[nn.Module, str]]:
    """Each submodule's id -> (the module holding it, its attribute name there): where to put its replacement."""
    return {id(child): (parent, name) for parent in model.modules() for name, child in parent.named_children()}


def _foldable_norms() -> tuple[type, ...]:
    """The batch norms :func:`fold_batch_norms` folds: PyTorch's, and timm's with an activation after it."""
    from timm.layers.norm_act import BatchNormAct2d

    return nn.BatchNorm2d, BatchNormAct2d


def static_same_padding(model: nn.Module, divisor: int) -> int:
    """Replace timm's ``Conv2dSame`` (TensorFlow "SAME" padding computed from each input's size, used by the
    ``tf_*`` encoders' strided convolutions) by a fixed ``ZeroPad2d`` + plain ``Conv2d``, in place; returns how many.

    For an input whose size is a multiple of the stride, SAME padding does not depend on the size: the total pad is
    ``(kernel - 1) * dilation + 1 - stride``. The inference paths only run inputs padded to a multiple of the model's
    ``divisor``, so a layer is replaced when its input is a multiple of its stride for every such size (checked on
    inputs of 2 and 3 divisors, whose difference is one). What it buys: ``torch.export`` no longer reasons
    symbolically about each layer's pad (an EfficientNet-Lite2 FPN exported in minutes before, seconds after), and
    the plain convolutions' batch norms can be folded."""
    from timm.layers.conv2d_same import Conv2dSame

    sizes: dict[int, set] = {}
    record = lambda module, inputs: sizes.setdefault(id(module), set()).update(inputs[0].shape[-2:])  # noqa: E731
    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if type(m) is Conv2dSame]
    if not hooks:
        return 0
    device, channels = next(model.parameters()).device, input_channels(model)
    try:
        with torch.no_grad():
            for height, width in ((2, 3), (3, 2)):
                model.eval()(torch.zeros(1, channels, height * divisor, width * divisor, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    parents = _parents(model)
    replaced = 0
    for conv in [m for m in model.modules() if type(m) is Conv2dSame]:
        if id(conv) not in parents or any(size % s for size in sizes.get(id(conv), {1}) for s in conv.stride):
            continue
        pad_h, pad_w = (max((k - 1) * d + 1 - s, 0)
                        for k, d, s in zip(conv.kernel_size, conv.dilation, conv.stride, strict=True))
        plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                          conv.groups, conv.bias is not None, device=device, dtype=conv.weight.dtype)
        plain.load_state_dict(conv.state_dict())
        pad = nn.ZeroPad2d((pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))  # timm's split
        parent, name = parents[id(conv)]
        setattr(parent, name, nn.Sequential(pad, plain))
        replaced += 1
    return replaced


def _uses_per_autograd_node(outputs) -> dict:
    """How many times each autograd node's result is used, in the graph that produced ``outputs`` (a tensor or a
    tuple / list / dict of them); a returned tensor counts as one use."""
    tensors = outputs.values() if isinstance(outputs, dict) else outputs if isinstance(outputs, (tuple, list)) \
        else [outputs]
    roots = [t.grad_fn for t in tensors if isinstance(t, torch.Tensor) and t.grad_fn is not None]
    uses: dict = dict.fromkeys(roots, 1)
    stack, seen = list(roots), set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for child, _ in node.next_functions:
            if child is not None:
                uses[child] = uses.get(child, 0) + 1
                stack.append(child)
    return uses


class BackendModel(SegmentationModel):
    """A trained model behind an inference backend: same ``meta``, ``config``, classes and input handling
    (padding to ``size_divisor``, logits at input size) as the model it was made from; inference only."""

    backend = ""

    def __init__(self, config: dict, meta: dict, size_divisor: int, precision: str = "fp32") -> None:
        super().__init__()
        self.config = copy.deepcopy(config)
        self.meta = copy.deepcopy(meta)
        self.size_divisor = size_divisor
        if precision not in PRECISIONS:
            raise ConfigError(f"precision: unknown {precision!r}{closest(precision, PRECISIONS)}; choose from "
                              f"{', '.join(PRECISIONS)}")
        self.precision = precision

    def train(self, mode: bool = True):
        if mode:
            raise RuntimeError(f"a model behind the {self.backend} backend is for inference only")
        return super().train(False)


AUTOCAST_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)


def cast_autocast_weights(network: nn.Module) -> int:
    """Store in bfloat16 the weights and biases of the layers that bfloat16 autocast runs in bfloat16 anyway
    (convolutions, linear layers), in place; returns how many. Autocast would cast them on every call; cast once, the
    results are the same bit for bit (the cast is the same rounding) and the eager path skips a weight copy per layer
    and call (12-14 % of the CamVid network's latency on a 2-core AMX Xeon, docs/performance.md)."""
    layers = [module for module in network.modules() if isinstance(module, AUTOCAST_LAYERS)]
    for module in layers:
        module.to(torch.bfloat16)
    return len(layers)


class EagerModel(BackendModel):
    """Batch norms folded, channels-last, inference mode (and optionally bfloat16 autocast)."""

    backend = "eager"

    def __init__(self, model: SegmentationModel, precision: str = "fp32") -> None:
        super().__init__(model.config, model.meta, model.size_divisor, precision)
        with torch.inference_mode(False):  # a copy made in inference mode could not record the fold's graph
            network = copy.deepcopy(model).eval()
            device = next(network.parameters()).device
            example = torch.zeros(1, input_channels(model), 2 * model.size_divisor, 2 * model.size_divisor,
                                  device=device)
            self.static_padding = static_same_padding(network, model.size_divisor)
            # In bf16, timm's norms stay: folded, the CamVid twin lost 0.19 points on its unseen sequence (53.69 ->
            # 53.50 %, docs/performance.md), where PyTorch's folded norms kept the U-Net twin's (+0.03 points).
            self.folded = fold_batch_norms(network, example, with_activation=precision == "fp32")
        if precision == "bf16":
            cast_autocast_weights(network)
        self.network = network.to(memory_format=torch.channels_last)
        self.eval()

    def run(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.forward_padded(images)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(images.device.type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            return self.run(images).float().contiguous()


class CompiledModel(EagerModel):
    """The eager path compiled by ``torch.compile`` (inductor, frozen weights)."""

    backend = "compile"

    def __init__(self, model: SegmentationModel, precision: str = "fp32") -> None:
        super().__init__(model, precision)
        separate_compile_cache()
        self.compiled = torch.compile(self.network.forward_padded, options={"freezing": True})

    def run(self, images: torch.Tensor) -> torch.Tensor:
        return self.compiled(images)


class _PaddedForward(nn.Module):
    """The graph ONNX export traces: logits for an input already padded to the size divisor."""

    def __init__(self, model: SegmentationModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.forward_padded(images)


def export_onnx(model: SegmentationModel, path: str | Path, opset: int = 18) -> Path:
    """Write ``model`` as ONNX (input ``images``: N x 3 x H x W, normalised, H and W multiples of the model's
    size divisor; output ``logits``), dynamic batch, height and width; the model's config and meta (classes,
    normalisation, size divisor) go into the file's metadata. Written atomically."""
    path = Path(path)
    model = copy.deepcopy(model).eval().cpu()
    static_same_padding(model, model.size_divisor)  # else torch.export reasons about every SAME pad (minutes)
    channels = input_channels(model)
    fold_batch_norms(model, torch.zeros(1, channels, 2 * model.size_divisor, 2 * model.size_divisor))
    example = torch.zeros(1, channels, 2 * model.size_divisor, 3 * model.size_divisor)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    import onnx

    with atomic_path(path) as temporary, torch.no_grad(), warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        warnings.simplefilter("ignore", UserWarning)
        # The current exporter (torch.export, then onnxscript): dynamic batch, height and width.
        torch.onnx.export(_PaddedForward(model), (example,), str(temporary), dynamo=True, opset_version=opset,
                          input_names=["images"], output_names=["logits"], external_data=False,
                          dynamic_shapes=(dynamic,))
        graph = onnx.load(str(temporary))
        for key, value in {"pixelseg_config": model.config, "pixelseg_meta": model.meta,
                           "pixelseg_size_divisor": model.size_divisor}.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        onnx.save(graph, str(temporary))
    return path


def calibration_batches(model: SegmentationModel, images: list[np.ndarray]):
    """Each image as the network sees it (normalised, at the model's inference scale, padded to its size divisor):
    what static quantisation measures activation ranges on."""
    import torch.nn.functional as F

    from pixelseg.inference import inference_scale, normalise

    divisor = model.size_divisor
    for image in images:
        batch = normalise(image, model.meta["mean"], model.meta["std"])
        scale = inference_scale(model, batch.shape[2], batch.shape[3])
        if scale != 1.0:
            size = (max(1, round(batch.shape[2] * scale)), max(1, round(batch.shape[3] * scale)))
            batch = F.interpolate(batch, size=size, mode="bilinear", align_corners=False)
        pad_bottom, pad_right = (-batch.shape[2]) % divisor, (-batch.shape[3]) % divisor
        yield {"images": F.pad(batch, (0, pad_right, 0, pad_bottom)).numpy()}


def quantize_onnx(model: SegmentationModel, float_path: str | Path, path: str | Path,
                  images: list[np.ndarray]) -> Path:
    """INT8 post-training static quantisation of an exported model with onnxruntime: weights per output channel
    (signed 8-bit), activations per tensor (unsigned 8-bit) with ranges calibrated on ``images`` (training images,
    not the data it will be judged on), QDQ format; the pixelseg metadata is kept. Written atomically."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not images:
        raise ConfigError("INT8 quantisation needs calibration images (--calibrate)")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration_batches(model, images))

        def get_next(self):
            return next(self.batches, None)

    path = Path(path)
    with tempfile.TemporaryDirectory() as folder, atomic_path(path) as temporary:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(temporary), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
        graph, source = onnx.load(str(temporary)), onnx.load(str(float_path))
        present = {entry.key for entry in graph.metadata_props}
        for entry in source.metadata_props:
            if entry.key not in present:
                graph.metadata_props.add().CopyFrom(entry)
        added = graph.metadata_props.add()
        added.key, added.value = "pixelseg_precision", json.dumps("int8")
        onnx.save(graph, str(temporary))
    return path


class OnnxModel(BackendModel):
    """An exported model run by onnxruntime (CPU execution provider, all graph optimisations)."""

    backend = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime

        path = Path(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - any failure means an unusable file
            raise CheckpointError(f"{path}: not a readable ONNX model ({error})") from None
        metadata = session.get_modelmeta().custom_metadata_map
        if "pixelseg_config" not in metadata:
            raise CheckpointError(f"{path}: not exported by `pixelseg export` (no pixelseg metadata)")
        super().__init__(json.loads(metadata["pixelseg_config"]), json.loads(metadata["pixelseg_meta"]),
                         json.loads(metadata["pixelseg_size_divisor"]),
                         json.loads(metadata.get("pixelseg_precision", '"fp32"')))
        self.session, self.path = session, path
        self.eval()

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        device = images.device
        array = images.detach().float().cpu().contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": array})[0]).to(device)


def onnx_agreement(model: SegmentationModel, path: str | Path, height: int = 256, width: int = 320,
                   seed: int = 0) -> tuple[float, float]:
    """How closely the ONNX file at ``path`` reproduces ``model`` on a random image of the given size: the largest
    absolute logit difference and the share of pixels with the same class."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(1, 3, height, width, generator=generator)
    exported = OnnxModel(path)
    with torch.inference_mode():
        expected = copy.deepcopy(model).eval().cpu()(images)
        produced = exported(images)
    difference = (expected - produced).abs().max().item()
    return difference, (expected.argmax(1) == produced.argmax(1)).float().mean().item()


def _onnx_backend(model: SegmentationModel, precision: str) -> SegmentationModel:
    if precision != "fp32":
        raise ConfigError("the onnx backend runs in float32 only (precision bf16 is for eager and compile)")
    with tempfile.TemporaryDirectory() as folder:
        return OnnxModel(export_onnx(model, Path(folder) / "model.onnx"))


BACKENDS: dict[str, Callable[[SegmentationModel, str], SegmentationModel]] = {
    "eager": EagerModel, "onnx": _onnx_backend, "compile": CompiledModel,
}
"""The inference backends: name -> factory(model, precision). ``--backend`` takes any name here."""


def with_backend(model: SegmentationModel, backend: str = "eager", precision: str = "fp32") -> SegmentationModel:
    """``model`` ready for inference on ``backend`` (see the module docstring); the class maps are those of the
    plain model (float32) or close to them (bf16)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend: unknown {backend!r}{closest(backend, BACKENDS)}; choose from "
                          f"{', '.join(BACKENDS)}")
    if isinstance(model, BackendModel):
        if model.backend == backend and precision in (model.precision, "fp32"):
            return model  # an ONNX file runs at the precision it was exported in
        raise ConfigError(f"the model already runs on the {model.backend} backend; load the original for {backend}")
    return BACKENDS[backend](model, precision)
