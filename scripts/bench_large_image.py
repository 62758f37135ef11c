"""Peak memory of `pixelseg predict --tile` on large images (aerial mosaics): the class map in strips against the
whole probability volume, for square images of a few sizes (docs/performance.md, "Large images").

    python scripts/bench_large_image.py [--sizes 2000,5000,10000] [--volume-up-to 5000] [--model camvid] [--scale 1]

Each image is a mosaic of one CamVid frame (or a noise image without the data), written as JPEG. Every run is a
fresh process whose peak resident memory (ru_maxrss) is read when it exits: `pixelseg predict IMAGE --tile
1024,1024` (strips: the image, its class map and one row of tiles' logits) and, up to --volume-up-to, the same
prediction keeping the C x H x W probabilities (predict_image's default). Larger images than Pillow's limit need
PIXELSEG_MAX_IMAGE_PIXELS, which the script sets for its runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VOLUME = """
import sys
import pixelseg
from pixelseg.io import label_image, read_image, write_image
model = pixelseg.load(sys.argv[1])
prediction = model.predict(read_image(sys.argv[2]), tile=(1024, 1024), scale=float(sys.argv[4]))
write_image(sys.argv[3], label_image(prediction.labels))
"""


def mosaic(size: int, path: Path) -> None:
    from pixelseg.io import read_image, write_image

    frames = sorted((Path(os.environ.get("PIXELSEG_DATA", ROOT.parent / "shared" / "data")) / "camvid" / "val")
                    .glob("*.png"))
    if frames:
        frame = read_image(frames[0])
    else:
        frame = np.random.default_rng(0).integers(0, 255, (360, 480, 3), dtype=np.uint8)
    reps = (size // frame.shape[0] + 1, size // frame.shape[1] + 1, 1)
    write_image(path, np.tile(frame, reps)[:size, :size])


def peak_rss(command: list[str], env: dict) -> tuple[float, float]:
    """(peak resident memory in MiB, wall seconds) of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,5000,10000")
    parser.add_argument("--volume-up-to", type=int, default=5000, help="largest size run keeping the probabilities")
    parser.add_argument("--model", default="camvid")
    parser.add_argument("--scale", default="1", help="network input scale (--scale of pixelseg predict)")
    args = parser.parse_args()
    env = {**os.environ, "PIXELSEG_MAX_IMAGE_PIXELS": str(max(int(s) for s in args.sizes.split(",")) ** 2 + 1)}
    binary = Path(sys.executable).parent / "pixelseg"
    print("| image | pixels | class map in strips: peak RSS | bytes per pixel | time | probability volume: peak RSS "
          "| bytes per pixel |\n|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for size in map(int, args.sizes.split(",")):
            image = Path(folder) / f"mosaic_{size}.jpg"
            mosaic(size, image)
            predict = [str(binary), "--quiet", "predict", str(image), "--model", args.model, "--tile", "1024,1024",
                       "--scale", args.scale, "--out", str(Path(folder) / "out")]
            strips, seconds = peak_rss(predict, env)
            volume = "-", "-"
            if size <= args.volume_up_to:
                mib, _ = peak_rss([sys.executable, "-c", VOLUME, args.model, str(image),
                                   str(Path(folder) / "volume.png"), args.scale], env)
                volume = f"{mib:,.0f} MiB", f"{mib * 2**20 / size**2:.1f}"
            print(f"| {size} x {size} | {size * size / 1e6:.0f} M | {strips:,.0f} MiB | "
                  f"{strips * 2**20 / size**2:.1f} | {seconds:.0f} s | {volume[0]} | {volume[1]} |", flush=True)
            image.unlink()


if __name__ == "__main__":
    main()
