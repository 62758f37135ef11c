"""How good are weak labels? Compare the pseudo-masks of `pixelseg data weak` with the true masks of the same images.

    python scripts/weak_label_quality.py runs/weak/portrait_boxes/masks/train ../shared/data/portrait/masks/train

For the pixels the pseudo-masks label (not 255), per class: precision and recall against the truth, IoU; and the
share of each true class that the pseudo-masks leave unlabelled (ignored in training). Images without a true mask
of the same name are skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from pixelseg.constants import IGNORE_INDEX
from pixelseg.io import read_label_image as read_mask
from pixelseg.metrics.confusion import ConfusionMatrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pseudo", type=Path, help="folder of pseudo-masks (PNG, 255 = unlabelled)")
    parser.add_argument("truth", type=Path, help="folder of the true masks, same file names")
    parser.add_argument("--every", type=int, default=1, help="take every N-th image (default all)")
    args = parser.parse_args()
    files = sorted(args.pseudo.glob("*.png"))[:: args.every]
    pairs = [(f, args.truth / f.name) for f in files if (args.truth / f.name).is_file()]
    if not pairs:
        raise SystemExit(f"no pseudo-mask in {args.pseudo} has a true mask of the same name in {args.truth}")
    truths = [read_mask(t) for _, t in pairs]
    num_classes = int(max(int(t[t != IGNORE_INDEX].max(initial=0)) for t in truths)) + 1
    matrix = ConfusionMatrix(num_classes)
    truth_pixels, unlabelled = np.zeros(num_classes), np.zeros(num_classes)
    for (pseudo_file, _), truth in zip(pairs, truths, strict=True):
        pseudo = read_mask(pseudo_file)
        labelled = pseudo != IGNORE_INDEX
        known = truth != IGNORE_INDEX
        for c in range(num_classes):
            truth_pixels[c] += (known & (truth == c)).sum()
            unlabelled[c] += (~labelled & (truth == c)).sum()
        keep = labelled & known
        matrix.update(torch.from_numpy(pseudo[keep].astype(np.int64)), torch.from_numpy(truth[keep].astype(np.int64)))
    m = matrix.compute()
    names = [str(c) for c in range(num_classes)]
    for folder in (args.pseudo.parent.parent, args.truth.parent.parent):  # <dataset>/masks/<split>/
        if (folder / "classes.json").is_file():
            names = json.loads((folder / "classes.json").read_text()).get("names", names)
            break
    print(f"{len(pairs)} images; the pseudo-masks label {1 - unlabelled.sum() / truth_pixels.sum():.1%} of the "
          f"truly labelled pixels\n")
    print("| class | precision | recall (of labelled) | IoU | left unlabelled |\n|---|---:|---:|---:|---:|")
    for c in range(num_classes):
        print(f"| {names[c]} | {m['precision'][c]:.1%} | {m['recall'][c]:.1%} | {m['iou'][c]:.1%} | "
              f"{unlabelled[c] / max(truth_pixels[c], 1):.1%} |")


if __name__ == "__main__":
    main()
