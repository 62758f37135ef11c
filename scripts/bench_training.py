"""Training speed on the CPU: pixelseg's training step against segmentation_models_pytorch's with the same loop,
and whether CamVid data loading keeps up with the model.

    pip install -e .[bench]
    python scripts/bench_training.py                      # Markdown on stdout (docs/performance.md)
    python scripts/bench_training.py --steps 10 --batch 8 --size 192,256
    python scripts/bench_training.py --sections allocator --models unet,fcdensenet56 --steps 3
    python scripts/bench_training.py --sections fc6 --steps 1 --size 176,240
    python scripts/bench_training.py --sections layout --float32-only --models upernet,deeplabv3plus --steps 3
    python scripts/bench_training.py --sections fusion_conv --batch 2 --steps 2
    python scripts/bench_training.py --sections layout --models unet --encoder resnet18 --batch 4 --size 352,480

- ``step``: U-Net/ResNet-34 and DeepLabv3+/ResNet-50 (the same networks on both sides: DeepLabv3+ with
  ``aspp_conv=True, fuse_convs=1``, smp's decoder layout; pixelseg's FPN has the
  paper's larger head, smp's a smaller one, so it is left out), ours and smp's, random weights, the same step
  (AdamW, cross-entropy with an ignore index, backward, optimizer step) on the same random batch; steps alternate
  between the two models, the median step time is compared (ratio = smp / ours, above 1: pixelseg is faster).
- ``layout``: pixelseg's own training step in float32 (contiguous and channels-last) and under bfloat16 autocast,
  for a few architectures (``--models``): what ``train.channels_last`` and ``train.amp: bf16`` buy on this CPU.
- ``allocator``: the same float32 channels-last step in a fresh process per memory allocator: glibc's default,
  glibc with transparent huge pages (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``), jemalloc and tcmalloc
  (``LD_PRELOAD``; Debian packages libjemalloc2, libgoogle-perftools4), rounds alternating between them; with
  the share of CPU time spent in the kernel and the page faults per step (glibc hands every block over 32 MiB
  back to the kernel when it is freed, and the next step faults it in again, zeroed).
- ``fc6``: FCN's fc6 (7x7 convolution, 512 -> 4096 channels) forward and backward on the stride-32 map of the
  batch, as oneDNN's convolution and as the matrix product FCN trains it with on the CPU
  (``convolution_as_matrix_product``); alternating, one step each per round (the convolution takes minutes on an
  AVX2-only CPU, where oneDNN computes its weight gradient with its reference loop).
- ``dilation_fc6``: the same for Dilation's fc6 (dilation 4, on the stride-8 map), whose weight gradient oneDNN
  computes with its reference loop on AVX-512 CPUs too (``--batch 1``: the convolution takes about two minutes).
- ``fusion_conv``: UPerNet's 3x3 2048 -> 512 fusion convolution, forward and each gradient timed apart, in both
  memory layouts (oneDNN's AVX2 weight gradient is slow in channels-last).
- ``loader``: one epoch of CamVid train batches at the shipped model's stage-1 recipe (half resolution, random
  scale, crop, flip, colour jitter) from pixelseg's loader, with 0 and 1 workers and with the decoded-image cache,
  against the time the U-Net/ResNet-18 of that recipe spends on the same number of training steps.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import pixelseg
from pixelseg.data import open_dataset
from pixelseg.data.transforms import training_transform
from pixelseg.engine.benchmark import timed_call


def step_time(model, optimizer, loss_fn, images, labels) -> float:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()

    return timed_call(step)[0]


def random_batch(args) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark's batch: ``args.batch`` random images of ``args.size`` and random labels of 11 classes."""
    height, width = (int(v) for v in args.size.split(","))
    torch.manual_seed(0)
    return torch.randn(args.batch, 3, height, width), torch.randint(0, 11, (args.batch, height, width))


def main_logits(logits):
    """The main output of a training forward (PSPNet returns (logits, auxiliary logits) in training)."""
    return logits[0] if isinstance(logits, tuple) else logits


def section_step(args) -> None:
    import segmentation_models_pytorch as smp

    images, labels = random_batch(args)
    height, width = images.shape[-2:]
    labels[:, :8] = 255  # some ignored pixels, as in CamVid's void
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)
    print(f"## Training step against segmentation_models_pytorch ({args.batch}x3x{height}x{width}, "
          f"{torch.get_num_threads()} CPU threads)\n")
    print(f"Median of {args.steps} alternating steps after 2 warm-up steps each: forward, cross-entropy, backward, "
          "AdamW step.\n")
    print("| architecture | smp (s/step) | pixelseg (s/step) | smp / pixelseg | pixelseg images/s |")
    print("|---|---:|---:|---:|---:|")
    for label, ours, theirs in (
        ("U-Net, ResNet-34", lambda: pixelseg.create("unet", num_classes=11, encoder="resnet34"),
         lambda: smp.Unet("resnet34", encoder_weights=None, classes=11)),
        ("DeepLabv3+, ResNet-50", lambda: pixelseg.create("deeplabv3plus", num_classes=11, encoder="resnet50",
                                         aspp_conv=True, fuse_convs=1),
         lambda: smp.DeepLabV3Plus("resnet50", encoder_weights=None, classes=11)),
    ):
        models = {"smp": theirs().train(), "ours": ours().train()}
        optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, m in models.items()}
        times: dict[str, list[float]] = {k: [] for k in models}
        for step in range(args.steps + 2):
            for key, model in models.items():
                elapsed = step_time(model, optimizers[key], loss_fn, images, labels)
                if step >= 2:
                    times[key].append(elapsed)
        theirs_s, ours_s = statistics.median(times["smp"]), statistics.median(times["ours"])
        print(f"| {label} | {theirs_s:.3f} | {ours_s:.3f} | {theirs_s / ours_s:.2f} | {args.batch / ours_s:.1f} |",
              flush=True)
    print()


def section_loader(args) -> None:
    root = Path(os.environ.get("PIXELSEG_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
    if not (root / "camvid" / "train").is_dir():
        raise SystemExit(f"no CamVid under {root} (set PIXELSEG_DATA)")
    transform = training_transform((176, 240), base_scale=0.5, scale_range=(0.75, 1.5), flip=True,
                                   color_jitter=0.3)
    model = pixelseg.create("unet", num_classes=11, encoder="resnet18", decoder_channels=[128, 64, 32, 16, 16])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)
    batch = 8
    images, labels = torch.randn(batch, 3, 176, 240), torch.randint(0, 11, (batch, 176, 240))
    steps = 367 // batch
    step_times = [step_time(model.train(), optimizer, loss_fn, images, labels) for _ in range(6)][2:]
    model_epoch = statistics.median(step_times) * steps
    print(f"## Does loading keep up? CamVid train, stage-1 recipe (half resolution, {steps} batches of {batch})\n")
    print(f"The U-Net/ResNet-18 of that recipe needs {statistics.median(step_times):.2f} s a training step, "
          f"{model_epoch:.0f} s for the {steps} steps of an epoch ({steps * batch / model_epoch:.1f} images/s) on "
          f"{torch.get_num_threads()} threads.\n")
    print("| loader | seconds for one epoch of batches (loading alone) | share of the model's epoch time |")
    print("|---|---:|---:|")
    for label, workers, cache in (("0 workers, decoding every epoch", 0, False),
                                  ("1 worker, decoding every epoch", 1, False),
                                  ("0 workers, decoded-image cache", 0, True)):
        dataset = open_dataset("camvid", root / "camvid", "train")
        dataset.transform = transform
        if cache:
            dataset.cache_in_memory(progress=False)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True,
                                             num_workers=workers)
        started = time.perf_counter()
        for _ in loader:
            pass
        elapsed = time.perf_counter() - started
        print(f"| {label} | {elapsed:.1f} | {100 * elapsed / model_epoch:.0f} % |", flush=True)
    print("\nWith workers, loading runs beside the training step; with 0 workers it adds to it.\n")


def section_layout(args) -> None:
    images, labels = random_batch(args)
    height, width = images.shape[-2:]
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)
    settings = {"contiguous": (False, False), "channels_last": (True, False), "bf16": (False, True),
                "both": (True, True)}
    with_bf16 = not args.float32_only  # bfloat16 is emulated (slow) on CPUs without AVX512-BF16 or AMX
    if not with_bf16:
        settings = {key: settings[key] for key in ("contiguous", "channels_last")}
    print(f"## Training step by memory layout and precision ({args.batch}x3x{height}x{width}, "
          f"{torch.get_num_threads()} CPU threads, {torch.backends.cpu.get_cpu_capability()} kernels)\n")
    print(f"One model per row, its default encoder, random weights; median of {args.steps} steps after 2 warm-up "
          f"steps, the {len(settings)} settings alternating. Speed-ups are against float32 in PyTorch's default "
          "(contiguous) layout; `train.channels_last: true` is the second column"
          + (", `train.amp: bf16` the third.\n" if with_bf16 else ".\n"))
    print("| model | float32 (s/step) | channels-last |" + (" bfloat16 autocast | both |" if with_bf16 else ""))
    print("|---|---:|---:|" + ("---:|---:|" if with_bf16 else ""))
    for name in args.models.split(","):
        model = pixelseg.create(name, num_classes=11, **({"encoder": args.encoder} if args.encoder else {})).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def forward(batch: torch.Tensor, bf16: bool, model=model) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model(batch)

        def loss_of(logits, target: torch.Tensor) -> torch.Tensor:
            return loss_fn(main_logits(logits).float(), target)

        times: dict[str, list[float]] = {key: [] for key in settings}
        for step in range(args.steps + 2):
            for key, (channels_last, bf16) in settings.items():
                layout = torch.channels_last if channels_last else torch.contiguous_format
                model.to(memory_format=layout)
                elapsed = step_time(functools.partial(forward, bf16=bf16), optimizer, loss_of,
                                    images.contiguous(memory_format=layout), labels)
                if step >= 2:
                    times[key].append(elapsed)
        base = statistics.median(times["contiguous"])
        ratios = " | ".join(f"{base / statistics.median(times[key]):.2f}x" for key in list(settings)[1:])
        print(f"| {name}{f' ({args.encoder})' if args.encoder else ''} | {base:.2f} | {ratios} |", flush=True)
    print()


ALLOCATORS = {
    "glibc (default)": {},
    "glibc, transparent huge pages": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
    "jemalloc": {"LD_PRELOAD": "libjemalloc.so.2"},
    "tcmalloc": {"LD_PRELOAD": "libtcmalloc.so.4"},
}


def section_allocator_child(args) -> None:
    """Steps of one model in this process (started by ``section_allocator``); one JSON line on stdout."""
    preload = os.environ.get("LD_PRELOAD")
    if preload and preload not in Path("/proc/self/maps").read_text():
        print(json.dumps({"missing": preload}))
        return
    images, labels = random_batch(args)
    images = images.contiguous(memory_format=torch.channels_last)
    model = pixelseg.create(args.models, num_classes=11).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)

    def loss_of(logits, target: torch.Tensor) -> torch.Tensor:
        return loss_fn(main_logits(logits), target)

    step_time(model, optimizer, loss_of, images, labels)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF)
    times = [step_time(model, optimizer, loss_of, images, labels) for _ in range(args.steps)]
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    print(json.dumps({"times": times, "kernel_share": system / (user + system),
                      "faults_per_step": (after.ru_minflt - before.ru_minflt) / args.steps}))


def section_allocator(args) -> None:
    rounds = 2
    print(f"## Training step by memory allocator ({args.batch}x3x{args.size.replace(',', 'x')}, float32, "
          f"channels-last, {torch.get_num_threads()} CPU threads)\n")
    print(f"A fresh process per allocator and round, {rounds} rounds alternating between the allocators, "
          f"{args.steps} steps each after a warm-up step; median step time, speed-up against glibc's default.\n")
    print("| model | allocator | s/step | speed-up | kernel share of CPU time | page faults per step |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.models.split(","):
        results: dict[str, list[dict]] = {label: [] for label in ALLOCATORS}
        for _ in range(rounds):
            for label, env in ALLOCATORS.items():
                command = [sys.executable, __file__, "--sections", "_allocator_child", "--models", name,
                           "--steps", str(args.steps), "--batch", str(args.batch), "--size", args.size]
                child = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                                       check=True)
                results[label].append(json.loads(child.stdout.strip().splitlines()[-1]))
        base = statistics.median(t for run in results["glibc (default)"] for t in run["times"])
        for label, runs in results.items():
            if "missing" in runs[0]:
                print(f"| {name} | {label} | {runs[0]['missing']} not installed | | | |")
                continue
            median = statistics.median(t for run in runs for t in run["times"])
            kernel = statistics.mean(run["kernel_share"] for run in runs)
            faults = statistics.mean(run["faults_per_step"] for run in runs)
            print(f"| {name} | {label} | {median:.2f} | {base / median:.2f}x | {100 * kernel:.0f} % | "
                  f"{faults:,.0f} |", flush=True)
    print()


def section_fc6(args) -> None:
    time_fc6(args, "FCN fc6", stride=32, dilation=1)


def section_dilation_fc6(args) -> None:
    time_fc6(args, "Dilation fc6", stride=8, dilation=4)


def time_fc6(args, label: str, stride: int, dilation: int) -> None:
    """fc6 (7x7, 512 -> 4096 channels, same padding) forward + backward on the stride-``stride`` map of the batch,
    as oneDNN's convolution and as a matrix product, alternating; prints the table and the gradients' difference."""
    from pixelseg.models.base import convolution_as_matrix_product

    height, width = (int(v) for v in args.size.split(","))
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(512, 4096, 7, padding=3 * dilation, dilation=dilation)
    torch.nn.init.kaiming_normal_(conv.weight)
    features = torch.randn(args.batch, 512, -(-height // stride), -(-width // stride))
    ways = {"oneDNN convolution": conv, "matrix product (im2col)": functools.partial(convolution_as_matrix_product,
                                                                                   conv=conv)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    gradients = {}
    for _ in range(args.steps):
        for name, forward in ways.items():
            conv.zero_grad(set_to_none=True)
            started = time.perf_counter()
            forward(features).square().mean().backward()
            times[name].append(time.perf_counter() - started)
            gradients[name] = conv.weight.grad.clone()
    first, second = (gradients[name] for name in ways)
    print(f"## {label} forward + backward ({args.batch}x512x{features.shape[2]}x{features.shape[3]} -> 4096 "
          f"channels, dilation {dilation}, {torch.get_num_threads()} CPU threads, "
          f"{torch.backends.cpu.get_cpu_capability()})\n")
    print("| way | s (median) | speed-up |\n|---|---:|---:|")
    base = statistics.median(times["oneDNN convolution"])
    for name in ways:
        print(f"| {name} | {statistics.median(times[name]):.2f} | {base / statistics.median(times[name]):.1f}x |")
    print(f"\nlargest weight-gradient difference between the two: {(first - second).abs().max():.2e} "
          f"(largest gradient {first.abs().max():.2e})\n")


def section_fusion_conv(args) -> None:
    """UPerNet's fusion convolution (3x3, 2048 -> 512 channels on the 1/4-scale map): forward, input gradient and
    weight gradient timed apart, in the contiguous and the channels-last layout."""
    height, width = (int(v) for v in args.size.split(","))
    torch.manual_seed(0)
    shape = (args.batch, 2048, -(-height // 4), -(-width // 4))
    features, weight = torch.randn(shape), torch.randn(512, 2048, 3, 3) * 0.01
    grad_output = torch.randn(args.batch, 512, *shape[2:])
    backward = functools.partial(torch.ops.aten.convolution_backward, bias_sizes=[0], stride=[1, 1],
                                 padding=[1, 1], dilation=[1, 1], transposed=False, output_padding=[0, 0], groups=1)
    parts = {"forward": lambda x, w, g: torch.nn.functional.conv2d(x, w, padding=1),
             "input gradient": lambda x, w, g: backward(g, x, w, output_mask=[True, False, False]),
             "weight gradient": lambda x, w, g: backward(g, x, w, output_mask=[False, True, False])}
    layouts = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.steps + 1):  # the first round warms up
        for layout, memory_format in layouts.items():
            x, w, g = (t.contiguous(memory_format=memory_format) for t in (features, weight, grad_output))
            for part, run in parts.items():
                started = time.perf_counter()
                run(x, w, g)
                times.setdefault((layout, part), []).append(time.perf_counter() - started)
    print(f"## UPerNet's fusion convolution by layout ({'x'.join(map(str, shape))} -> 512 channels, 3x3, "
          f"{torch.get_num_threads()} CPU threads, {torch.backends.cpu.get_cpu_capability()})\n")
    print("| part | contiguous (s) | channels-last (s) | channels-last / contiguous |\n|---|---:|---:|---:|")
    for part in parts:
        a, b = (statistics.median(times[(layout, part)][1:]) for layout in layouts)
        print(f"| {part} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    print()


SECTIONS = {"step": section_step, "loader": section_loader, "layout": section_layout,
            "allocator": section_allocator, "_allocator_child": section_allocator_child, "fc6": section_fc6,
            "dilation_fc6": section_dilation_fc6, "fusion_conv": section_fusion_conv}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="step,loader,layout",
                        help=f"comma-separated, from {', '.join(name for name in SECTIONS if name[0] != '_')}")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", default="192,256", help="HEIGHT,WIDTH of training crops (multiples of 32: smp)")
    parser.add_argument("--models", default="unet,pspnet,fcdensenet56,segformer", help="for the layout section")
    parser.add_argument("--encoder", help="layout section: this encoder instead of each model's default")
    parser.add_argument("--float32-only", action="store_true",
                        help="layout section: contiguous and channels-last only (no bfloat16 columns)")
    args = parser.parse_args()
    for name in args.sections.split(","):
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
