"""The picture of docs/models/portrait.md: one-click cutouts of validation portraits, best and worst.

    python scripts/portrait_examples.py --out docs/img/portrait_cutouts.png

Every image of the portrait validation list (index ending in 0; never trained on) is cut out as `pixelseg cutout`
does (the shipped portrait model, guided-filter alpha); the rows are the images with the highest and the lowest
person IoU of the hard mask. It also prints the person IoU and boundary F1 of the network's mask and of each
refined alpha (guided filter; closed-form matting where pymatting is installed), thresholded at 0.5, over the
whole list, with the refinement's median time per image: what each refinement changes. Columns: the photo, the
cutout over a checkerboard, a close-up of the edge with the most soft alpha (hair, mostly), and the errors of the
hard mask (red: background kept, blue: person cut away). Last, the colour error the cutout's foreground colours
leave on a new background, with a known soft alpha (:func:`colour_spill`).
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

import pixelseg
from pixelseg.apps.cutout import CutoutSettings, foreground_colours, foreground_mask, refine_alpha, refined_alpha
from pixelseg.engine.auto_backend import model_validation_data
from pixelseg.metrics import BoundaryF1
from pixelseg.visualize import plot_panels


def checkerboard(shape: tuple[int, int], cell: int = 12) -> np.ndarray:
    rows, columns = np.indices(shape)
    board = np.where(((rows // cell) + (columns // cell)) % 2 == 0, 235, 190).astype(np.float32)
    return np.repeat(board[..., None], 3, 2)


def edge_crop(alpha: np.ndarray) -> tuple[slice, slice]:
    """The square window (a third of the height) holding the most soft alpha: where hair meets the background."""
    import cv2

    size = alpha.shape[0] // 3
    soft = ((alpha > 0.05) & (alpha < 0.95)).astype(np.float32)
    density = cv2.boxFilter(soft, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)
    half = size // 2
    inner = density[half:alpha.shape[0] - half, half:alpha.shape[1] - half]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return slice(y, y + size), slice(x, x + size)


def score(model, dataset) -> tuple[list, dict, dict, dict]:
    """(person IoU, index) per image; boundary F1, pooled person (intersection, union) and the refinement's seconds
    per image of the network's mask and of each refined alpha, each thresholded at 0.5."""
    methods = ["guided"] + (["matting"] if importlib.util.find_spec("pymatting") else [])
    scored, kinds = [], ["network", *methods]
    boundary = {kind: BoundaryF1(2) for kind in kinds}
    overlap = {kind: [0, 0] for kind in kinds}
    seconds = {kind: [] for kind in kinds}
    for index in range(len(dataset)):
        image, truth = dataset.read_image(index), dataset.read_mask(index)
        mask = foreground_mask(image, CutoutSettings(model=model))
        person, labelled = truth == 1, truth != 255
        for kind in kinds:
            started = time.perf_counter()
            hard = mask > 0.5 if kind == "network" else refined_alpha(image, mask, kind) > 0.5
            seconds[kind].append(time.perf_counter() - started)
            boundary[kind].update(hard.astype(np.uint8), truth)
            overlap[kind][0] += (hard & person & labelled).sum()
            overlap[kind][1] += ((hard | person) & labelled).sum()
        hard = mask > 0.5
        scored.append(((hard & person).sum() / max((hard | person).sum(), 1), index))
    return sorted(scored), boundary, overlap, seconds


def colour_spill(dataset, radii: list[tuple[int, ...]]) -> dict:
    """Per foreground-colour estimate (and pymatting's, where installed), the colour error that shows once a soft
    edge is put on a new background,
    alpha |F_estimate - F| averaged over the soft pixels (0 < alpha < 1; 0-255 scale), on every 7th validation
    portrait composited over the photo 50 places on, with the person mask blurred (sigma 1, 2 and 4 pixels) as a
    known alpha: image = alpha F + (1 - alpha) B. "none" keeps the image's colours as they are."""
    import cv2

    errors: dict = {"none": [], **{size: [] for size in radii}}
    for index in range(0, len(dataset), 7):
        person = dataset.read_image(index).astype(np.float32)
        behind = dataset.read_image((index + 50) % len(dataset))
        behind = cv2.resize(behind, person.shape[1::-1]).astype(np.float32)
        for sigma in (1.0, 2.0, 4.0):
            alpha = cv2.GaussianBlur((dataset.read_mask(index) == 1).astype(np.float32), (0, 0), sigma)
            weight = alpha[..., None]
            image = np.round(weight * person + (1 - weight) * behind).astype(np.uint8)
            soft = (alpha > 0.02) & (alpha < 0.98)
            errors["none"].append(np.abs(weight * (image - person))[soft].mean())
            for size in radii:
                estimate = foreground_colours(image, alpha, size).astype(np.float32)
                errors[size].append(np.abs(weight * (estimate - person))[soft].mean())
            if importlib.util.find_spec("pymatting"):  # the multilevel estimator of Germer et al. 2020, for scale
                from pymatting import estimate_foreground_ml

                started = time.perf_counter()
                estimate = 255 * estimate_foreground_ml(image / 255.0, alpha.astype(np.float64))
                errors.setdefault("pymatting", []).append(np.abs(weight * (estimate - person))[soft].mean())
                errors.setdefault("pymatting seconds", []).append(time.perf_counter() - started)
    return {key: float(np.mean(values)) for key, values in errors.items()}


def picture_row(model, dataset, index: int, iou: float) -> list:
    image, truth = dataset.read_image(index), dataset.read_mask(index)
    mask = foreground_mask(image, CutoutSettings(model=model))
    alpha = refine_alpha(image, mask)
    colours = foreground_colours(image, alpha)  # as `pixelseg cutout` keeps them under the soft alpha
    cut = (colours * alpha[..., None] + checkerboard(alpha.shape) * (1 - alpha[..., None])).astype(np.uint8)
    errors = image.copy() // 2
    hard, person = mask > 0.5, truth == 1
    errors[hard & ~person & (truth != 255)] = (230, 30, 30)
    errors[~hard & person] = (30, 60, 230)
    return [(image, f"{dataset.samples[index].name}: person IoU {100 * iou:.1f} %"), (cut, "cutout"),
            (cut[edge_crop(alpha)], "edge (most soft alpha), close-up"), (errors, "errors: red kept, blue cut away")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="portrait")
    parser.add_argument("--rows", type=int, default=3, help="best and worst rows each")
    parser.add_argument("--out", default="docs/img/portrait_cutouts.png")
    args = parser.parse_args()
    model = pixelseg.load(args.model)
    dataset = model_validation_data(model)  # the held-out portraits, from the model's meta
    if dataset is None:
        raise SystemExit("the model's validation data is not here (../shared/data/portrait or $PIXELSEG_DATA)")
    scored, boundary, overlap, seconds = score(model, dataset)
    chosen = scored[::-1][:args.rows] + scored[:args.rows]
    plot_panels([picture_row(model, dataset, index, iou) for iou, index in chosen], args.out)
    ious = [iou for iou, _ in scored]
    print(f"{len(ious)} validation portraits: person IoU median {100 * np.median(ious):.1f} %, "
          f"lowest {100 * ious[0]:.1f} %; picture: {args.out}\n")
    print("| mask | person IoU (all pixels pooled) | boundary F1 | refinement, median per image |")
    print("|---|---:|---:|---:|")
    for kind in boundary:
        extra = "-" if kind == "network" else f"{1000 * np.median(seconds[kind]):.1f} ms"
        print(f"| {kind} | {100 * overlap[kind][0] / overlap[kind][1]:.2f} % | "
              f"{100 * boundary[kind].compute()['boundary_f1']:.2f} % | {extra} |")
    spill = colour_spill(dataset, [(30, 4), (90, 6)])
    print("\n| colours under a known soft alpha | error alpha abs(F - truth), 0-255 | against the image's colours |")
    print("|---|---:|---:|")
    seconds = spill.pop("pymatting seconds", None)
    for key, value in spill.items():
        name = {"none": "the image's own (no estimate)",
                "pymatting": f"pymatting's estimate_foreground_ml ({1000 * (seconds or 0):.0f} ms a composite)"}.get(
            key, f"blur-fusion, box sizes {key}")
        print(f"| {name} | {value:.2f} | {value / spill['none']:.2f}x |")


if __name__ == "__main__":
    main()
