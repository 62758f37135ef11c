"""Confusion-matrix throughput against torchmetrics' MulticlassJaccardIndex, same inputs, same run.

    python scripts/bench_metrics.py            # 16 x 512 x 1024 label maps, 19 classes, ignore index 255

Prints the median seconds per update+compute of each, the ratio, and whether the confusion matrices and the
per-class IoUs are identical. Needs the bench extra (pip install -e .[bench]).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from pixelseg.engine.benchmark import timed_call
from pixelseg.metrics import ConfusionMatrix


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up
    return statistics.median(timed_call(function)[0] for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="16,512,1024", help="batch,height,width")
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--ignore-index", type=int, default=255)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    classes = args.classes
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, classes, shape, generator=generator)
    labels[torch.rand(shape, generator=generator) < 0.1] = args.ignore_index  # 10 % unlabelled pixels
    right = torch.rand(shape, generator=generator) < 0.7
    wrong = torch.randint(0, classes, shape, generator=generator)
    predictions = torch.where(right, labels.clamp_max(classes - 1), wrong)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; label maps {shape} int64, {classes} classes, "
          f"ignore index {args.ignore_index}")

    rows = []
    for validate in (True, False):
        peer = MulticlassJaccardIndex(classes, ignore_index=args.ignore_index, average=None, validate_args=validate)

        def run_peer(peer=peer):
            peer.reset()
            peer.update(predictions, labels)
            return peer.compute()

        rows.append((f"torchmetrics MulticlassJaccardIndex (validate_args={validate})", run_peer))
    ours = ConfusionMatrix(classes, args.ignore_index)

    def run_ours():
        ours.reset()
        ours.update(predictions, labels)
        return ours.compute()

    rows.append(("pixelseg ConfusionMatrix", run_ours))
    seconds = {name: median_seconds(function, args.repeats) for name, function in rows}
    pixels = labels.numel()
    for name, value in seconds.items():
        print(f"{name:62s} {value * 1000:8.1f} ms  {pixels / value / 1e6:8.1f} Mpixel/s")
    for name in list(seconds)[:2]:
        print(f"pixelseg / {name}: {seconds[name] / seconds['pixelseg ConfusionMatrix']:.1f}x the throughput")

    peer_iou = rows[0][1]().numpy()
    run_ours()
    same_matrix = torch.equal(ours.matrix, _peer_matrix(predictions, labels, classes, args.ignore_index))
    our_iou = np.asarray(ours.compute()["iou"])
    print(f"confusion matrices identical: {same_matrix}")
    print(f"per-class IoU identical as float32: {np.array_equal(our_iou.astype(np.float32), peer_iou)}; "
          f"largest difference {np.abs(our_iou - peer_iou).max():.2e}")


def _peer_matrix(predictions, labels, classes, ignore_index) -> torch.Tensor:
    from torchmetrics.classification import MulticlassConfusionMatrix

    matrix = MulticlassConfusionMatrix(classes, ignore_index=ignore_index)
    matrix.update(predictions, labels)
    return matrix.compute()


if __name__ == "__main__":
    main()
