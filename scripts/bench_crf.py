"""Dense CRF: pixelseg's against pydensecrf2 (the reference C++ code) on the same inputs, in the same run.

    python scripts/bench_crf.py --model camvid --images 10 --threads 2

For each CamVid val image: the model's probabilities (11 classes, 360x480), then 5 mean-field iterations with the
reference code's settings by both implementations, alternating which runs first, after one untimed warm-up call
of pixelseg's (it loads the compiled loops and builds the position-only kernel, once per process and image size).
Prints per-image times, the median of each, their ratio, and the share of pixels on which the label maps agree.
``--stages`` then prints where pixelseg's time goes: the appearance kernel (its 5-D lattice and normalisation),
the mean-field iterations, and the whole call, medians over the same images.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch

import pixelseg
from pixelseg.crf import DenseCRF
from pixelseg.crf.dense import GaussianKernel, appearance_features, mean_field
from pixelseg.data.layouts import data_root
from pixelseg.engine.benchmark import timed_call
from pixelseg.io import read_image


def reference_crf(image: np.ndarray, probabilities: np.ndarray, iterations: int) -> np.ndarray:
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    classes, height, width = probabilities.shape
    crf = dcrf.DenseCRF2D(width, height, classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probabilities)))
    crf.addPairwiseGaussian(sxy=3, compat=3)
    crf.addPairwiseBilateral(sxy=80, srgb=13, rgbim=np.ascontiguousarray(image), compat=10)
    return np.array(crf.inference(iterations)).reshape(classes, height, width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="camvid", help="model for the probabilities (default: the shipped one)")
    parser.add_argument("--data", default=None, help="CamVid root (default: $PIXELSEG_DATA/camvid)")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for pixelseg (default: all)")
    parser.add_argument("--stages", action="store_true", help="also time pixelseg's stages")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.data) if args.data else data_root() / "camvid"
    files = sorted((root / "val").glob("*.png"))[: args.images]
    model = pixelseg.load(args.model)
    crf = DenseCRF(iterations=args.iterations)
    ours_times, reference_times, agreements, inputs = [], [], [], []
    warm = read_image(files[0])  # untimed: numba's compiled loops load from their cache, the position kernel is built
    crf(warm, torch.from_numpy(model.predict(warm).probabilities.astype(np.float32)))
    print(f"{len(files)} CamVid val images, {args.iterations} iterations, pixelseg on {torch.get_num_threads()} "
          f"thread(s), pydensecrf2 on 1 (it has no threads)")
    for number, path in enumerate(files):
        image = read_image(path)
        probabilities = model.predict(image).probabilities.astype(np.float32)
        inputs.append((image, probabilities))
        runs = {}
        order = ("ours", "reference") if number % 2 == 0 else ("reference", "ours")
        for name in order:
            if name == "ours":
                elapsed, labels = timed_call(lambda i=image, p=probabilities: crf(i, torch.from_numpy(p)).numpy())
            else:
                elapsed, labels = timed_call(reference_crf, image, probabilities, args.iterations)
            runs[name] = labels
            (ours_times if name == "ours" else reference_times).append(elapsed)
        agreements.append(float((runs["ours"].argmax(0) == runs["reference"].argmax(0)).mean()))
        print(f"  {path.name}: pixelseg {ours_times[-1]:.3f} s, pydensecrf2 {reference_times[-1]:.3f} s, "
              f"labels agree on {100 * agreements[-1]:.3f} %")
    ours, reference = statistics.median(ours_times), statistics.median(reference_times)
    print(f"median: pixelseg {ours:.3f} s, pydensecrf2 {reference:.3f} s; pydensecrf2 / pixelseg = "
          f"{reference / ours:.2f}x; agreement min {100 * min(agreements):.3f} %, mean "
          f"{100 * statistics.mean(agreements):.3f} %")
    if args.stages:
        print_stages(crf, inputs)


def print_stages(crf: DenseCRF, inputs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Median seconds of the appearance kernel's construction, the mean field and the whole call, over the
    (image, probabilities) pairs the comparison ran on."""
    stages = {"appearance kernel (5-D lattice + normalisation)": [], "mean field": [], "whole call": []}
    for image, probabilities in inputs:
        probabilities = torch.from_numpy(probabilities)
        pixels = torch.from_numpy(np.ascontiguousarray(image))
        features = appearance_features(pixels, crf.appearance_sxy, crf.appearance_srgb)
        stages["appearance kernel (5-D lattice + normalisation)"].append(timed_call(GaussianKernel, features)[0])
        kernels, compatibilities = crf.setup(pixels)
        unary = crf.unary(probabilities)
        stages["mean field"].append(timed_call(mean_field, unary, kernels, compatibilities, crf.iterations)[0])
        stages["whole call"].append(timed_call(crf, image, probabilities)[0])
    for name, times in stages.items():
        print(f"  {name}: {1000 * statistics.median(times):.1f} ms")


if __name__ == "__main__":
    main()
