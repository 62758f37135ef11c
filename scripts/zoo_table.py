"""Collect training runs (scripts/train_zoo.sh, scripts/ablation_camvid.sh) into a Markdown table.

    python scripts/zoo_table.py                          # runs/zoo/*/log.csv and runs/zoo/*/eval_val/metrics.json
    python scripts/zoo_table.py runs/ablation_train/e12 --classes   # the ablation rows, with per-class IoU
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="runs/zoo", help="folder of run folders (default runs/zoo)")
    parser.add_argument("--classes", action="store_true", help="add a column per class (IoU)")
    args = parser.parse_args()
    runs = sorted(Path(args.root).glob("*/eval_val/metrics.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no */eval_val/metrics.json under {args.root}")
    names = json.loads(runs[0].read_text()).get("classes") or []
    class_header = "".join(f" {name} |" for name in names) if args.classes else ""
    print("| run | val mIoU (%) | val pixel acc. (%) | mean class acc. (%) | epochs | training time (min) |"
          + class_header)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|" * len(names) if args.classes else ""))
    for run in runs:
        folder = run.parent.parent
        metrics = json.loads(run.read_text())
        with open(folder / "log.csv") as handle:
            rows = list(csv.DictReader(handle))
        minutes = sum(float(row["seconds"]) for row in rows) / 60
        classes = "".join(f" {100 * iou:.1f} |" for iou in metrics["iou"]) if args.classes else ""
        print(f"| {folder.name} | {100 * metrics['miou']:.2f} | {100 * metrics['pixel_accuracy']:.2f} | "
              f"{100 * metrics['mean_class_accuracy']:.2f} | {len(rows)} | {minutes:.1f} |{classes}")


if __name__ == "__main__":
    main()
