"""Tables of the application recipes (scripts/train_applications.sh) for docs/applications.md, from
runs/apps/<name>/eval/metrics.json (each dataset's validation split, never trained on) and each run's log.csv.

    python scripts/applications_table.py [--runs runs/apps]
    python scripts/applications_table.py --runs docs/results/fewer_labels_roads --names all sup_quarter semi_quarter
        (scripts/fewer_labels_roads.sh's rows, one table row each)

Datasets that have not run are left out. Training minutes are the sum of log.csv's epoch times.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from pixelseg.engine.loggers import read_log

DATASETS = ("retina", "roads", "weeds", "faces", "fashion")
PER_CLASS_LIMIT = 12  # fashion's 59 classes: the most frequent ones only


def percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def read(run: Path) -> dict | None:
    path = run / "eval" / "metrics.json"
    if not path.is_file():
        return None
    log = read_log(run)
    return {**json.loads(path.read_text()), "minutes": log["minutes"], "epochs": log["epochs"]}


def summary(runs: dict) -> None:
    print("| dataset | mIoU | pixel acc. | mean class acc. | foreground F1 | boundary F1 | epochs | training (min) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in runs.items():
        foreground = percent(m["dice"][1]) if len(m["dice"]) == 2 else "-"
        print(f"| {name} | {percent(m['miou'])} | {percent(m['pixel_accuracy'])} | "
              f"{percent(m['mean_class_accuracy'])} | {foreground} | {percent(m.get('boundary_f1'))} | "
              f"{m['epochs']} | {m['minutes']:.1f} |")


def per_class(name: str, m: dict) -> None:
    order = sorted(range(len(m["classes"])), key=lambda i: -m["pixels"][i])[:PER_CLASS_LIMIT]
    shown = "" if len(order) == len(m["classes"]) else f" ({len(order)} most frequent of {len(m['classes'])})"
    print(f"\n{name}, per class{shown}:\n")
    print("| class | IoU | F1 | precision | recall | boundary F1 |")
    print("|---|---:|---:|---:|---:|---:|")
    boundary = m.get("boundary_f1_per_class", [float("nan")] * len(m["classes"]))
    for i in order:
        print(f"| {m['classes'][i]} | {percent(m['iou'][i])} | {percent(m['dice'][i])} | "
              f"{percent(m['precision'][i])} | {percent(m['recall'][i])} | {percent(boundary[i])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/apps")
    parser.add_argument("--names", nargs="+", default=DATASETS, help="run folders under --runs (the datasets)")
    args = parser.parse_args()
    runs = {name: m for name in args.names if (m := read(Path(args.runs) / name)) is not None}
    if not runs:
        raise SystemExit(f"no finished runs in {args.runs} (bash scripts/train_applications.sh)")
    summary(runs)
    for name, m in runs.items():
        per_class(name, m)


if __name__ == "__main__":
    main()
