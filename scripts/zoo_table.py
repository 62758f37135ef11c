"""Collect the zoo's CamVid runs (scripts/train_zoo.sh) into a Markdown table.

    python scripts/zoo_table.py            # reads runs/zoo/*/log.csv and runs/zoo/*/eval_val/metrics.json
"""

from __future__ import annotations

import csv
import json
from pathlib import Path


def main() -> None:
    print("| model | val mIoU (%) | val pixel acc. (%) | epochs | training time (min) |")
    print("|---|---:|---:|---:|---:|")
    for run in sorted(Path("runs/zoo").glob("*/eval_val/metrics.json")):
        folder = run.parent.parent
        metrics = json.loads(run.read_text())
        with open(folder / "log.csv") as handle:
            rows = list(csv.DictReader(handle))
        minutes = sum(float(row["seconds"]) for row in rows) / 60
        print(f"| {folder.name} | {100 * metrics['miou']:.2f} | {100 * metrics['pixel_accuracy']:.2f} | {len(rows)} | "
              f"{minutes:.1f} |")


if __name__ == "__main__":
    main()
