"""The model zoo's tables: collected from training runs, or written into docs/model_zoo.md from its results file.

    python scripts/zoo_table.py                          # runs/zoo/*/log.csv and runs/zoo/*/eval_val/metrics.json
    python scripts/zoo_table.py runs/ablation_train/e12 --classes   # the ablation rows, with per-class IoU
    python scripts/zoo_table.py --page                   # docs/model_zoo.md's tables from docs/results/zoo.json

docs/results/zoo.json is the one machine-readable record of the zoo's measurements (with each protocol's command);
the page's tables between ``<!-- zoo:NAME -->`` and ``<!-- /zoo:NAME -->`` are generated from it (a test checks).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from pixelseg.engine.loggers import read_log

ROOT = Path(__file__).resolve().parents[1]
RESULTS, PAGE = ROOT / "docs" / "results" / "zoo.json", ROOT / "docs" / "model_zoo.md"


def _value(number, digits: int = 2, suffix: str = "") -> str:
    return "-" if number is None else f"{number:.{digits}f}{suffix}"


def size_table(results: dict) -> str:
    lines = ["| model | default encoder | params (M) | GFLOPs @360x480 | CPU latency (ms) | peak memory (MB) |",
             "|---|---|---:|---:|---:|---:|"]
    for m in results["models"]:
        if m["params_m"] is None:
            lines.append(f"| {m['name']} | {m['encoder']} | {m.get('note', '-')} | | | |")
            continue
        lines.append(f"| {m['name']} | {m['encoder']} | {_value(m['params_m'])} | {_value(m['gflops'], 1)} | "
                     f"{_value(m['latency_ms'], 1)} | {_value(m['peak_memory_mb'], 0)} |")
    return "\n".join(lines)


def camvid_table(results: dict) -> str:
    lines = ["| model | setting | seen-sequence val mIoU (%) | pixel acc. (%) | epochs | training (min) | "
             "unseen-sequence mIoU (%) |", "|---|---|---:|---:|---:|---:|---:|"]
    for m in results["models"]:
        seen, unseen = m.get("camvid_short_seen"), m.get("camvid_unseen")
        unseen_text = f"{_value(unseen['miou'])} ({unseen['setting']})" if unseen else "not trained yet"
        if not seen:
            lines.append(f"| {m['name']} | | not trained yet | | | | {unseen_text} |")
            continue
        lines.append(f"| {m['name']} | {seen['setting']} | {_value(seen['miou'])} | {_value(seen['pixel_accuracy'])} | "
                     f"{seen['epochs']} | {_value(seen['training_minutes'], 1)} | {unseen_text} |")
    return "\n".join(lines)


TABLES = {"size": size_table, "camvid": camvid_table}


def render_page(text: str, results: dict) -> str:
    """``text`` with every generated table replaced by the one the results file gives."""
    for name, table in TABLES.items():
        pattern = re.compile(rf"(<!-- zoo:{name} -->\n)(?:.*?\n)?(<!-- /zoo:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{PAGE}: no <!-- zoo:{name} --> ... <!-- /zoo:{name} --> block")
        text = pattern.sub(lambda match, table=table: match.group(1) + table(results) + "\n" + match.group(2), text)
    return text


def collect(root: str, classes: bool) -> None:
    runs = sorted(Path(root).glob("*/eval_val/metrics.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no */eval_val/metrics.json under {root}")
    names = json.loads(runs[0].read_text()).get("classes") or []
    class_header = "".join(f" {name} |" for name in names) if classes else ""
    print("| run | val mIoU (%) | val pixel acc. (%) | mean class acc. (%) | epochs | training time (min) |"
          + class_header)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|" * len(names) if classes else ""))
    for run in runs:
        folder = run.parent.parent
        metrics = json.loads(run.read_text())
        log = read_log(folder)
        per_class = "".join(f" {100 * iou:.1f} |" for iou in metrics["iou"]) if classes else ""
        print(f"| {folder.name} | {100 * metrics['miou']:.2f} | {100 * metrics['pixel_accuracy']:.2f} | "
              f"{100 * metrics['mean_class_accuracy']:.2f} | {log['epochs']} | {log['minutes']:.1f} |{per_class}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="runs/zoo", help="folder of run folders (default runs/zoo)")
    parser.add_argument("--classes", action="store_true", help="add a column per class (IoU)")
    parser.add_argument("--page", action="store_true", help="rewrite docs/model_zoo.md's tables from zoo.json")
    args = parser.parse_args()
    if args.page:
        PAGE.write_text(render_page(PAGE.read_text(), json.loads(RESULTS.read_text())))
        print(f"{PAGE}: tables written from {RESULTS}")
        return
    collect(args.root, args.classes)


if __name__ == "__main__":
    main()
