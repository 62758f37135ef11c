"""Every classical method, every given network, and each network with a dense CRF, on one dataset's val split.

    python scripts/classical_vs_deep.py membrane --models runs/membrane_unet_fullres_cpu/model
    python scripts/classical_vs_deep.py camvid --models camvid

Classical methods run with their default options. Those whose labels mean the same in every image (thresholds,
k-means, GrabCut) get one best-mIoU map from labels to classes for the whole dataset; those that make regions get
each region scored as its majority class, per image (an upper bound). Networks predict at their training scale,
scored at full resolution. Prints a Markdown table (mIoU, pixel accuracy, mean class accuracy, seconds per image
including reading the image) and writes the numbers to runs/classical_vs_deep_<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pixelseg
from pixelseg.classical import METHODS
from pixelseg.classical.scoring import evaluate_method
from pixelseg.crf import DenseCRF
from pixelseg.data import open_dataset
from pixelseg.engine import evaluate
from pixelseg.io import write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a dataset one of the models was trained on (membrane, camvid)")
    parser.add_argument("--models", nargs="*", default=[], help="model folders, checkpoints or shipped names")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), help="classical methods (default: all)")
    parser.add_argument("--images", type=int, help="only the first N val images (default: all)")
    parser.add_argument("--crf-option", action="append", default=[], metavar="KEY=VALUE",
                        help="also run each network with a dense CRF of these settings (e.g. appearance_weight=1)")
    args = parser.parse_args()
    models = [(source, pixelseg.load(source)) for source in args.models]
    stored = next((m.meta["data"] for _, m in models if Path(m.meta["data"]["root"]).name == args.dataset), None)
    if stored is None:
        raise SystemExit(f"none of --models was trained on {args.dataset}; its layout and options are unknown")
    dataset = open_dataset(stored["layout"], stored["root"], stored.get("val_split") or "val", **stored["options"])
    if args.images:
        dataset.samples = dataset.samples[: args.images]
    rows = []
    tuned = {key: float(value) for key, value in (option.split("=", 1) for option in args.crf_option)}

    def record(name: str, kind: str, run) -> None:
        started = time.perf_counter()
        result = run()
        seconds = (time.perf_counter() - started) / len(dataset)
        metrics = result.metrics
        rows.append({"name": name, "kind": kind, "miou": metrics["miou"], "pixel_accuracy": metrics["pixel_accuracy"],
                     "mean_class_accuracy": metrics["mean_class_accuracy"], "iou": metrics["iou"],
                     "seconds_per_image": seconds, "regions_per_image": metrics.get("regions_per_image"),
                     "assignment": metrics.get("assignment")})
        print(f"{name}: mIoU {100 * metrics['miou']:.2f} %, {seconds:.2f} s/image", flush=True)

    for method in args.methods:
        record(method, "classical", lambda method=method: evaluate_method(method, dataset, progress=False))
    for source, model in models:
        record(source, "network", lambda model=model: evaluate(model, dataset, progress=False))
        record(f"{source} + dense CRF", "network + CRF",
               lambda model=model: evaluate(model, dataset, progress=False, crf=DenseCRF()))
        if tuned:
            settings = ", ".join(f"{k}={v}" for k, v in tuned.items())
            record(f"{source} + dense CRF ({settings})", "network + CRF",
                   lambda model=model: evaluate(model, dataset, progress=False, crf=DenseCRF(**tuned)))

    lines = ["| method | kind | regions / image | mIoU | pixel acc. | mean class acc. | s / image |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        kind = row["kind"]
        if row["assignment"]:
            kind += ", levels mapped once" if "whole dataset" in row["assignment"] else ", regions: upper bound"
        regions = f"{row['regions_per_image']:.0f}" if row["regions_per_image"] else "-"
        lines.append(f"| {row['name']} | {kind} | {regions} | {100 * row['miou']:.2f} | "
                     f"{100 * row['pixel_accuracy']:.2f} | {100 * row['mean_class_accuracy']:.2f} | "
                     f"{row['seconds_per_image']:.2f} |")
    print(f"\n{dataset.name} {dataset.split}, {len(dataset)} images\n")
    print("\n".join(lines))
    out = Path("runs") / f"classical_vs_deep_{args.dataset}.json"
    write_text(out, json.dumps({"dataset": args.dataset, "split": dataset.split, "images": len(dataset),
                                "classes": dataset.classes.names, "rows": rows}, indent=2))
    print(f"\nnumbers: {out}")


if __name__ == "__main__":
    main()
