"""How good are weak labels made before? Compare a folder of pseudo-masks with the true masks of the same images.

    python scripts/weak_label_quality.py runs/weak/portrait_boxes/masks/train ../shared/data/portrait/masks/train

The same table that `pixelseg data weak` prints when it makes them (pixelseg.classical.weak_labels.TargetQuality):
per class, the precision of the pixels the pseudo-masks label, and the share of its true pixels they leave
unlabelled (255). Pseudo-masks without a true mask of the same name are skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pixelseg.classical.weak_labels import TargetQuality
from pixelseg.io import read_label_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pseudo", type=Path, help="folder of pseudo-masks (PNG, 255 = unlabelled)")
    parser.add_argument("truth", type=Path, help="folder of the true masks, same file names")
    args = parser.parse_args()
    pairs = [(f, args.truth / f.name) for f in sorted(args.pseudo.glob("*.png")) if (args.truth / f.name).is_file()]
    if not pairs:
        raise SystemExit(f"no pseudo-mask in {args.pseudo} has a true mask of the same name in {args.truth}")
    classes = next((folder / "classes.json" for folder in (args.pseudo.parent.parent, args.truth.parent.parent)
                    if (folder / "classes.json").is_file()), None)
    if classes is None:
        raise SystemExit(f"no classes.json two folders above {args.pseudo} or {args.truth}")
    description = json.loads(classes.read_text())
    quality = TargetQuality(len(description["names"]), description.get("ignore_index", 255))
    for pseudo, truth in pairs:
        quality.update(read_label_image(pseudo), read_label_image(truth))
    print(f"{len(pairs)} images; {quality.table(description['names'])}")


if __name__ == "__main__":
    main()
