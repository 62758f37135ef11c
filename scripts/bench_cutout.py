"""Latency of a one-click cutout (`pixelseg cutout photo.jpg`: the shipped portrait model, soft edges), per stage.

    python scripts/bench_cutout.py --repeats 10

The photo: portrait images of ../shared/data/portrait's validation list (index ending in 0; the portrait model
never trained on them), resized 2x to 600x800 (the dataset holds them at half of their 600x800 size) and written
as JPEG (quality 95). Stages, each the median over the repeats and the images: decode (the JPEG file to RGB),
network (the model's foreground probability at the photo's size, through the backend `--backend auto` picks and
through eager float32), refinement (the guided-filter alpha on the boundary band), foreground colours (blur-fusion
under the soft alpha), encode (the RGBA PNG, as `pixelseg cutout` writes it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import cv2
import torch
from PIL import Image

import pixelseg
from pixelseg.apps.cutout import CutoutSettings, composite, foreground_colours, foreground_mask, refine_alpha
from pixelseg.engine.auto_backend import model_validation_data
from pixelseg.engine.backends import with_backend
from pixelseg.engine.benchmark import timed_call
from pixelseg.io import encode_png, read_image
from pixelseg.loading import load_fastest


def photos(model, folder: Path, count: int) -> list[Path]:
    dataset = model_validation_data(model)
    if dataset is None:
        raise SystemExit("the model's validation data is not here (../shared/data/portrait or $PIXELSEG_DATA)")
    paths = []
    for index in range(count):
        image = dataset.read_image(index * (len(dataset) // count))
        big = cv2.resize(image, (image.shape[1] * 2, image.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
        paths.append(folder / f"photo{index}.jpg")
        Image.fromarray(big).save(paths[-1], quality=95)
    return paths


def encode_cutout(image, alpha, colours) -> bytes:
    """The RGBA cutout as PNG bytes, as `pixelseg cutout` writes it."""
    return encode_png(composite(image, alpha, None, colours))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="portrait")
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    fastest = load_fastest(args.model)
    paths = photos(fastest, Path(tempfile.mkdtemp()), args.images)
    models = {f"network, {fastest.backend} {getattr(fastest, 'precision', 'fp32')} (`--backend auto`)": fastest,
              "network, eager fp32": with_backend(pixelseg.load(args.model), "eager")}
    times: dict[str, list[float]] = {"decode": [], **{name: [] for name in models}, "refinement": [],
                                     "foreground colours": [], "encode": []}
    for _ in range(args.repeats):
        for path in paths:
            seconds, image = timed_call(read_image, path)
            times["decode"].append(seconds)
            for name, model in models.items():
                seconds, mask = timed_call(foreground_mask, image, CutoutSettings(model=model))
                times[name].append(seconds)
            seconds, alpha = timed_call(refine_alpha, image, mask)
            times["refinement"].append(seconds)
            seconds, colours = timed_call(foreground_colours, image, alpha)
            times["foreground colours"].append(seconds)
            times["encode"].append(timed_call(encode_cutout, image, alpha, colours)[0])
    height, width = image.shape[:2]
    print(f"{len(paths)} photos {width}x{height} (JPEG), {torch.get_num_threads()} CPU threads, median of "
          f"{args.repeats} rounds\n")
    print("| stage | median (ms) |\n|---|---:|")
    for name, values in times.items():
        print(f"| {name} | {1000 * statistics.median(values):.1f} |")
    first = next(iter(models))
    total = sum(statistics.median(times[k]) for k in ("decode", first, "refinement", "foreground colours", "encode"))
    print(f"| total with the `--backend auto` network | {1000 * total:.1f} |")
    long_side = fastest.meta.get("inference_long_side")
    if long_side:
        print(f"\nnetwork input: the photo resized to {long_side} pixels on its longer side")


if __name__ == "__main__":
    main()
