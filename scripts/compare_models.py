"""Latency of models side by side through pixelseg's inference path (one image, full resolution), in one run.

    python scripts/compare_models.py runs/old_camvid camvid --size 360,480 --repeats 10
    python scripts/compare_models.py runs/old_camvid camvid --precisions fp32,bf16   # each model at each precision

Each round times one prediction of every model (timed_call: torch.utils.benchmark; the same random image), so the
models see the same machine state; the table gives the median per model and its ratio to the first model.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch

import pixelseg
from pixelseg.engine.backends import with_backend
from pixelseg.engine.benchmark import timed_call
from pixelseg.inference import predict_image
from pixelseg.loading import SHIPPED_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders, checkpoints or shipped names; the first is the base")
    parser.add_argument("--size", default="360,480", help="HEIGHT,WIDTH of the image")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--precisions", default="fp32",
                        help="comma-separated precisions each PyTorch model runs at (fp32, bf16); ONNX files run at "
                             "their own")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split(","))
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    # as `pixelseg predict` runs them: the eager backend (batch norms folded, channels-last) or the ONNX file's own
    models = {}
    for name in args.models:
        for precision in ["fp32"] if name.endswith(".onnx") else args.precisions.split(","):
            backend = "onnx" if name.endswith(".onnx") else "eager"
            models[(name, precision)] = with_backend(pixelseg.load(name), backend, precision)
    for model in models.values():
        predict_image(model, image)  # warm-up
    times: dict[tuple[str, str], list[float]] = {key: [] for key in models}
    for _ in range(args.repeats):
        for key, model in models.items():
            times[key].append(timed_call(predict_image, model, image)[0])
    print(f"1 image {height}x{width}, {torch.get_num_threads()} CPU threads, median of "
          f"{args.repeats} rounds\n")
    print("| model | architecture, inference path | parameters (M) | weights file (MB) | latency (ms) | vs first |")
    print("|---|---|---:|---:|---:|---:|")
    base = statistics.median(next(iter(times.values())))
    for (name, precision), model in models.items():
        median = statistics.median(times[(name, precision)])
        source = Path(name) if Path(name).exists() else SHIPPED_DIR / name
        files = [source] if source.is_file() else list(source.glob("*.safetensors"))
        size = sum(p.stat().st_size for p in files) / 1e6
        path = f"{getattr(model, 'backend', 'eager')} {getattr(model, 'precision', 'fp32')}"
        architecture = f"{model.config['name']} / {model.config.get('encoder', '-')}, {path}"
        inner = getattr(model, "model", model)
        parameters = sum(p.numel() for p in inner.parameters()) / 1e6 or float("nan")  # an ONNX file holds none
        print(f"| {name} | {architecture} | {parameters:.2f} | {size:.1f} | "
              f"{1000 * median:.1f} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
