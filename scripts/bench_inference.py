"""CPU inference speed of pixelseg's backends against segmentation_models_pytorch, and how it scales.

    pip install -e .[bench]                                  # smp, onnxruntime
    python scripts/bench_inference.py                        # every section; Markdown on stdout
    python scripts/bench_inference.py --sections peers,agreement --repeats 10

Sections (docs/performance.md holds their output with this command):

- ``peers``: U-Net/ResNet-34, DeepLabv3+/ResNet-50 (``aspp_conv=True, fuse_convs=1``: smp's network) and FPN/ResNet-34
  (``pyramid_smoothing=False``: smp's network) at 1x3x512x512, smp's eager model against
  each pixelseg path (the model as built, ``eager`` = folded batch norms + channels-last, ``onnx``, ``compile``,
  ``eager`` and ``compile`` in bf16, onnxruntime INT8 calibrated on random images), same random weights on both
  sides where the architectures match. Runs alternate (theirs, ours, theirs, ...) so that the machine's noise hits
  all alike; the ratio is theirs / ours.
- ``roofline``: the arithmetic throughput (GFLOP/s, FLOPs from PyTorch's flop counter) smp's eager model reaches,
  what twice its speed would need, and what the CPU's best matrix multiply reaches (float32 and bfloat16).
- ``agreement``: the shipped CamVid model on CamVid val images: share of pixels whose class equals the plain
  float32 model's, per backend (needs ../shared/data or $PIXELSEG_DATA).
- ``mixed``: bf16 with the first and last convolutions (in execution order) kept in float32, the usual fix for
  low-precision drift: agreement with float32 on CamVid val (shipped model) and U-Net/ResNet-34 speed against smp.
- ``scaling``: latency and peak memory growth of three architectures from 256x256 to 2048x2048 (``eager``
  backend, each measured in a fresh process).
- ``window``: sliding-window inference (512x512 tiles, overlap 1/3) on images of growing area, windows batched
  by 4 against one window at a time.
- ``folder``: ``predict_files`` on CamVid val images with decoding and writing in background threads against
  one thing after the other.
- ``shipped``: the shipped models' networks (CamVid through its twin, which never saw its validation sequence) on
  every path against smp's nearest eager network: latency and mIoU on unseen validation data, side by side.
- ``throughput``: images per second of ``pixelseg predict`` with each shipped model at its default backend
  (``--images`` and 3x as many images; the difference leaves start-up out).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import pixelseg
from pixelseg.engine.backends import with_backend
from pixelseg.engine.benchmark import measure, timed_call
from pixelseg.engine.predict import predict_files
from pixelseg.inference import predict_image, sliding_window_logits, window_positions

ARCHITECTURES = [  # label, pixelseg name and options, smp class name and encoder
    ("U-Net, ResNet-34", "unet", {"encoder": "resnet34"}, "Unet", "resnet34"),
    ("DeepLabv3+, ResNet-50", "deeplabv3plus", {"encoder": "resnet50", "aspp_conv": True, "fuse_convs": 1},
     "DeepLabV3Plus", "resnet50"),
    ("FPN, ResNet-34", "fpn", {"encoder": "resnet34", "pyramid_smoothing": False}, "FPN", "resnet34"),
]
PATHS = [("as built", None, "fp32"), ("eager", "eager", "fp32"), ("onnx", "onnx", "fp32"),
         ("compile", "compile", "fp32"), ("eager bf16", "eager", "bf16"), ("compile bf16", "compile", "bf16"),
         ("onnx int8", "onnx", "int8")]


def int8_model(model, folder: Path, images: int = 8):
    """``model`` quantised to INT8 by onnxruntime, calibrated on ``images`` random colour images (speed only: the
    ranges of random inputs say nothing about accuracy, which docs/models/*.md measure on real data)."""
    from pixelseg.engine.backends import OnnxModel, export_onnx, quantize_onnx

    generator = np.random.default_rng(0)
    calibration = [generator.integers(0, 256, (512, 512, 3), dtype=np.uint8) for _ in range(images)]
    float_path = export_onnx(model, folder / "float.onnx")
    return OnnxModel(quantize_onnx(model, float_path, folder / "int8.onnx", calibration))


def path_runner(model, backend: str | None, precision: str, folder: Path):
    if backend is None:
        return model
    if precision == "int8":
        return int8_model(model, folder)
    return with_backend(model, backend, precision)


def seconds(function, *arguments) -> float:
    return timed_call(function, *arguments)[0]


def median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


def alternating_times(runners: dict, images: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each runner on ``images``: two warm-up calls each (the compile path compiles), then
    ``repeats`` rounds that call every runner once, so that the machine's noise hits all alike."""
    times: dict[str, list[float]] = {key: [] for key in runners}
    with torch.inference_mode():
        for runner in runners.values():
            runner(images), runner(images)
        for _ in range(repeats):
            for key, runner in runners.items():
                times[key].append(seconds(runner, images))
    return times


def section_peers(args) -> None:
    import segmentation_models_pytorch as smp

    images = torch.randn(1, 3, 512, 512)
    print("## Backends against segmentation_models_pytorch (1x3x512x512)\n")
    print(f"{torch.get_num_threads()} CPU threads, median of {args.repeats} alternating runs, random weights, "
          "torch.inference_mode; ratio = smp eager / pixelseg path (above 1: pixelseg is faster)\n")
    print("| architecture | smp eager (ms) | " + " | ".join(f"{label} (ms, ratio)" for label, _, _ in PATHS) + " |")
    print("|---|---:|" + "---:|" * len(PATHS))
    for label, name, options, smp_name, smp_encoder in ARCHITECTURES:
        torch.manual_seed(0)
        theirs = getattr(smp, smp_name)(smp_encoder, encoder_weights=None, classes=11).eval()
        ours = pixelseg.create(name, num_classes=11, **options).eval()
        runners = {"smp": theirs}
        folder = Path(tempfile.mkdtemp(prefix="pixelseg-bench-"))
        for path_label, backend, precision in PATHS:
            runners[path_label] = path_runner(ours, backend, precision, folder)
        times = alternating_times(runners, images, args.repeats)
        smp_ms = median_ms(times["smp"])
        cells = [f"{median_ms(times[key]):.0f} ({smp_ms / median_ms(times[key]):.2f}x)" for key, _, _ in PATHS]
        print(f"| {label} | {smp_ms:.0f} | " + " | ".join(cells) + " |", flush=True)
    print()


def matmul_gflops(dtype: torch.dtype, size: int = 4096, repeats: int = 5) -> float:
    """Best-case matrix-multiply throughput on this CPU's threads (GFLOP/s): the roof a convolution can reach."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = min(seconds(torch.matmul, a, b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def section_roofline(args) -> None:
    import segmentation_models_pytorch as smp
    from torch.utils.flop_counter import FlopCounterMode

    roofs = {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}
    images = torch.randn(1, 3, 512, 512)
    print("## What would 2x smp take? Arithmetic throughput (1x3x512x512)\n")
    print(f"{torch.get_num_threads()} CPU threads; best of 5 4096x4096 matrix multiplies: float32 "
          f"{roofs['float32']:.0f} GFLOP/s, bfloat16 {roofs['bfloat16']:.0f} GFLOP/s. A path 2x faster than smp "
          "that does the same arithmetic must sustain twice smp's throughput over the whole network.\n")
    print("| architecture | GFLOPs | smp eager (ms) | smp's throughput (GFLOP/s) | needed for 2x (GFLOP/s) |")
    print("|---|---:|---:|---:|---:|")
    for label, name, options, smp_name, smp_encoder in ARCHITECTURES:
        ours = pixelseg.create(name, num_classes=11, **options).eval()
        theirs = getattr(smp, smp_name)(smp_encoder, encoder_weights=None, classes=11).eval()
        counter = FlopCounterMode(display=False)
        with torch.inference_mode():
            with counter:
                ours(images)
            theirs(images)
            smp_ms = median_ms([seconds(theirs, images) for _ in range(args.repeats)])
        gflops = counter.get_total_flops() / 1e9
        achieved = 1000 * gflops / smp_ms
        print(f"| {label} | {gflops:.1f} | {smp_ms:.0f} | {achieved:.0f} | {2 * achieved:.0f} |", flush=True)
    print()


def val_images(count: int, folder: str = "camvid/val", pattern: str = "*.png") -> list[Path]:
    root = Path(os.environ.get("PIXELSEG_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
    images = sorted((root / folder).glob(pattern))
    if not images:
        raise SystemExit(f"no images {pattern} under {root}/{folder} (set PIXELSEG_DATA)")
    return images[:: max(1, len(images) // count)][:count]


def agreement(runner, paths: list[Path], reference: list[np.ndarray]) -> tuple[float, int]:
    """Share of pixels whose class equals ``reference`` (the float32 model's maps), and the images fully equal."""
    same = [(predict_image(runner, path).labels == truth) for path, truth in zip(paths, reference, strict=True)]
    return sum(int(s.sum()) for s in same) / sum(s.size for s in same), sum(bool(s.all()) for s in same)


def section_agreement(args) -> None:
    model = pixelseg.load("camvid")
    paths = val_images(args.images)
    reference = [predict_image(model, path).labels for path in paths]
    print(f"## Same class maps? The shipped CamVid model on {len(paths)} CamVid val images (360x480)\n")
    print("| path | pixels with the plain float32 model's class | images fully identical |")
    print("|---|---:|---:|")
    for label, backend, precision in PATHS[1:]:
        runner = with_backend(model, backend, precision)
        share, identical = agreement(runner, paths, reference)
        print(f"| {label} | {100 * share:.3f} % | {identical}/{len(paths)} |", flush=True)
    print()


def convolutions_in_order(network: torch.nn.Module) -> list[torch.nn.Module]:
    order: list[torch.nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m)) for m in network.modules()
             if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        network(torch.zeros(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    return list(dict.fromkeys(order))


def keep_float32(module: torch.nn.Module) -> None:
    """Run ``module`` in float32 inside a bf16 autocast region (its inputs cast back to float32)."""
    forward = module.forward

    def float32_forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            return forward(x.float())
    module.forward = float32_forward


def bf16_with_float32_ends(model, first: int, last: int):
    runner = with_backend(model, "eager", "bf16")
    convolutions = convolutions_in_order(runner.network)
    for module in convolutions[:first] + convolutions[len(convolutions) - last:]:
        keep_float32(module)
    return runner


def section_mixed(args) -> None:
    import segmentation_models_pytorch as smp

    policies = [(0, 0), (1, 1), (5, 4), (5, 8)]
    model = pixelseg.load("camvid")
    paths = val_images(args.images)
    reference = [predict_image(model, path).labels for path in paths]
    images = torch.randn(1, 3, 512, 512)
    theirs = smp.Unet("resnet34", encoder_weights=None, classes=11).eval()
    ours = pixelseg.create("unet", num_classes=11, encoder="resnet34").eval()
    runners = {policy: bf16_with_float32_ends(ours, *policy) for policy in policies}
    times: dict = {key: [] for key in ["smp", *policies]}
    with torch.inference_mode():
        for runner in [theirs, *runners.values()]:
            runner(images)
        for _ in range(args.repeats):
            times["smp"].append(seconds(theirs, images))
            for policy, runner in runners.items():
                times[policy].append(seconds(runner, images))
    print(f"## bf16 with float32 ends: agreement ({len(paths)} CamVid val images, shipped model) and speed "
          "(U-Net/ResNet-34, 1x3x512x512, against smp eager)\n")
    print("| convolutions kept in float32 | pixels with the float32 class | U-Net/ResNet-34 (ms) | smp / this |")
    print("|---|---:|---:|---:|")
    smp_ms = median_ms(times["smp"])
    for first, last in policies:
        runner = bf16_with_float32_ends(model, first, last)
        share, _ = agreement(runner, paths, reference)
        ms = median_ms(times[(first, last)])
        print(f"| first {first}, last {last} | {100 * share:.3f} % | {ms:.0f} | {smp_ms / ms:.2f}x |", flush=True)
    print()


def _scaling_row(arguments: tuple) -> tuple[float, float]:
    name, options, size, repeats = arguments
    row = measure(name, size, size, repeats=repeats, warmup=1, backend="eager", **options)
    return row.latency_ms, row.peak_memory_mb


def section_scaling(args) -> None:
    sizes = [int(v) for v in args.sizes.split(",")]
    print("## Latency and memory against input size (eager backend, batch 1, float32)\n")
    print("Each cell: median latency / peak resident memory growth, measured in a fresh process. Latency per "
          "megapixel in brackets.\n")
    print("| architecture | " + " | ".join(f"{s}x{s}" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    context = multiprocessing.get_context("spawn")
    for label, name, options, _, _ in ARCHITECTURES:
        cells = []
        for size in sizes:
            repeats = max(2, args.repeats // (1 + size // 768))
            with context.Pool(1) as pool:
                latency, memory = pool.apply(_scaling_row, ((name, options, size, repeats),))
            cells.append(f"{latency:.0f} ms / {memory:.0f} MB ({latency / (size * size / 1e6):.0f} ms/MP)")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    print()


def section_window(args) -> None:
    model = with_backend(pixelseg.create("unet", num_classes=11, encoder="resnet34"), "eager")
    tile = (512, 512)
    print("## Sliding window: time against image area (U-Net/ResNet-34, eager, 512x512 tiles, overlap 1/3)\n")
    print("| image | megapixels | windows | one window a pass (s) | 4 windows a pass (s) | s per window (batched) |")
    print("|---|---:|---:|---:|---:|---:|")
    for side in (512, 1024, 1536, 2048):
        images = torch.randn(1, 3, side, side)
        windows = len(window_positions(side, side, tile, 0.33))
        times: dict[int, list[float]] = {1: [], 4: []}
        with torch.inference_mode():
            sliding_window_logits(model, images[..., :512, :512], tile, 0.33)  # warm-up
            for _ in range(max(1, args.repeats // 4)):
                for batch in times:
                    times[batch].append(seconds(sliding_window_logits, model, images, tile, 0.33, batch))
        one, four = (statistics.median(times[b]) for b in (1, 4))
        print(f"| {side}x{side} | {side * side / 1e6:.2f} | {windows} | {one:.2f} | {four:.2f} | "
              f"{four / windows:.3f} |", flush=True)
    print()


def section_folder(args) -> None:
    model = with_backend(pixelseg.load("camvid"), "eager")
    paths = val_images(args.images)
    print(f"## Folder prediction: {len(paths)} CamVid val images, shipped model, eager backend\n")
    print("| pipeline | seconds (median of 3) | images/s |")
    print("|---|---:|---:|")
    times: dict[int, list[float]] = {0: [], 2: []}
    for _ in range(3):
        for prefetch in times:
            with tempfile.TemporaryDirectory() as folder:
                times[prefetch].append(seconds(lambda p=prefetch, f=folder: predict_files(
                    model, paths, f, progress=False, prefetch=p)))
    for prefetch, label in ((0, "read, predict, write one after the other"),
                            (2, "reading and writing in background threads")):
        elapsed = statistics.median(times[prefetch])
        print(f"| {label} | {elapsed:.2f} | {len(paths) / elapsed:.2f} |")
    print(f"\nspeed-up: {statistics.median(times[0]) / statistics.median(times[2]):.2f}x\n")


def _predict_command_seconds(model: str, paths: list[Path]) -> tuple[float, str]:
    """Wall time of ``pixelseg predict PATHS --model MODEL`` at its default backend, and the backend line it prints."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pixelseg", "predict", *map(str, paths), "--model", model, "--out", folder]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} ... failed:\n{result.stderr}")
    chosen = next((line for line in result.stdout.splitlines() if "backend auto" in line), "eager fp32")
    return elapsed, chosen


def section_throughput(args) -> None:
    """The shipped models through the command a user runs, at its default backend (``--backend auto``): images
    per second from the difference between a folder of 3N and one of N images, so that start-up is not counted."""
    sources = {"camvid": ("camvid/val", "*.png"), "portrait": ("portrait/images/train", "*.jpg")}
    print("## Folder prediction throughput: `pixelseg predict FOLDER` with the shipped models\n")
    print("| model | images | default backend's choice | images/s (start-up excluded) | command for N images (s) |")
    print("|---|---|---|---:|---:|")
    for model, (folder, pattern) in sources.items():
        paths = val_images(3 * args.images, folder, pattern)
        _predict_command_seconds(model, paths[:2])  # lets --backend auto measure and cache its choice
        small, chosen = _predict_command_seconds(model, paths[: args.images])
        large, _ = _predict_command_seconds(model, paths)
        rate = 2 * args.images / (large - small)
        chosen = chosen.removeprefix("pixelseg: backend auto: ").split("; cached")[0] + ")"
        print(f"| {model} | {folder}, {args.images} and {len(paths)} | {chosen} | "
              f"{rate:.2f} | {small:.1f} |", flush=True)
    print()


SHIPPED = [  # label, what it is, model, training split (INT8 calibration), smp's nearest network and options
    ("camvid twin", "the shipped camvid network and recipe (FPN, EfficientNet-Lite2, 1.5x input) trained without "
     "sequence 0006R0 (docs/results/camvid_twin), scored on 0006R0's 101 frames", "docs/results/camvid_twin",
     "train_0001TP_0016E5", "FPN", "tu-tf_efficientnet_lite2", {}),
    ("portrait", "the shipped portrait model (U-Net, EfficientNet-Lite0), scored on its 137 held-out portraits",
     "portrait", "train", "Unet", "tu-tf_efficientnet_lite0", {"decoder_channels": (128, 64, 32, 16, 16)}),
]


def shipped_paths(model, train, folder: Path) -> dict:
    """Every inference path worth having for ``model`` on this CPU: eager float32, eager and compiled bf16 where
    the CPU has fast bf16, onnxruntime float32 and INT8 (calibrated on 32 images spread over ``train``)."""
    from pixelseg.engine.backends import OnnxModel, export_onnx, quantize_onnx
    from pixelseg.engine.hardware import cpu_has_fast_bf16

    paths = {"eager fp32": with_backend(model, "eager")}
    if cpu_has_fast_bf16():
        paths["eager bf16"] = with_backend(model, "eager", "bf16")
        paths["compile bf16"] = with_backend(model, "compile", "bf16")
    float_path = export_onnx(model, folder / "float.onnx")
    paths["onnx fp32"] = OnnxModel(float_path)
    calibration = [train.read_image(int(i)) for i in np.linspace(0, len(train) - 1, min(32, len(train)))]
    paths["onnx int8"] = OnnxModel(quantize_onnx(model, float_path, folder / "int8.onnx", calibration))
    return paths


def section_shipped(args) -> None:
    """The shipped models' networks on each path: latency against smp's nearest eager float32 network on the same
    input (a validation image as the network sees it: scaled, padded) and mIoU on validation data the model never
    trained on, so that a path's speed and the accuracy it keeps are read side by side."""
    import segmentation_models_pytorch as smp

    from pixelseg.data import open_dataset
    from pixelseg.engine.auto_backend import model_validation_data
    from pixelseg.engine.backends import calibration_batches
    from pixelseg.engine.evaluate import evaluate

    print("## Inference paths of the shipped networks: speed and the accuracy they keep\n")
    print(f"{torch.get_num_threads()} CPU threads; latency: median of {args.repeats} alternating runs on one "
          "validation image as the network sees it; mIoU: every image of the model's validation split\n")
    for label, description, *_ in SHIPPED:
        print(f"- {label}: {description}")
    print("\n| model | path | network input | latency (ms) | vs smp eager fp32 | vs eager fp32 | mIoU | "
          "points vs fp32 |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for label, _, name, train_split, smp_name, smp_encoder, smp_options in SHIPPED:
        model = pixelseg.load(name).eval()
        val = model_validation_data(model)
        if val is None:
            raise SystemExit(f"{name}: its validation data is not here (../shared/data or $PIXELSEG_DATA)")
        stored = model.meta["data"]
        train = open_dataset(stored.get("layout"), stored["root"], train_split, **(stored.get("options") or {}))
        batch = torch.from_numpy(next(calibration_batches(model, [val.read_image(0)]))["images"])
        torch.manual_seed(0)
        theirs = getattr(smp, smp_name)(smp_encoder, encoder_weights=None, classes=model.classes.num_classes,
                                        **smp_options).eval()
        folder = Path(tempfile.mkdtemp(prefix="pixelseg-bench-"))
        runners = {"smp": theirs, **shipped_paths(model, train, folder)}
        times = alternating_times(runners, batch, args.repeats)
        scores = {key: evaluate(runner, val, progress=False).metrics["miou"] for key, runner in runners.items()
                  if key != "smp"}
        smp_ms, fp32_ms = median_ms(times["smp"]), median_ms(times["eager fp32"])
        size = "x".join(str(v) for v in batch.shape[-2:])
        print(f"| {label} | smp eager fp32 (random weights) | {size} | {smp_ms:.0f} | 1.00x | | | |")
        for key, miou in scores.items():
            ms = median_ms(times[key])
            print(f"| {label} | {key} | {size} | {ms:.0f} | {smp_ms / ms:.2f}x | {fp32_ms / ms:.2f}x | "
                  f"{100 * miou:.2f} % | {100 * (miou - scores['eager fp32']):+.2f} |", flush=True)
    print()


SECTIONS = {"peers": section_peers, "roofline": section_roofline, "agreement": section_agreement,
            "mixed": section_mixed, "scaling": section_scaling, "window": section_window, "folder": section_folder,
            "throughput": section_throughput, "shipped": section_shipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--images", type=int, default=20, help="CamVid val images for agreement and folder")
    parser.add_argument("--sizes", default="256,512,1024,1536,2048", help="square sizes for the scaling section")
    args = parser.parse_args()
    np.random.seed(0)
    print(f"pixelseg {pixelseg.__version__ if hasattr(pixelseg, '__version__') else ''}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPU cores\n")
    for name in args.sections.split(","):
        if name not in SECTIONS:
            raise SystemExit(f"unknown section {name!r}: choose from {', '.join(SECTIONS)}")
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
