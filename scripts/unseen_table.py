"""Tables of the unseen-sequence short protocol (scripts/unseen_camvid.sh) for docs/models/camvid.md and
docs/model_zoo.md, from docs/results/unseen_short/<row>/ (each row's eval/metrics.json, log.csv, cpu.txt and, for
rows run since pixelseg wrote it, train_config.yaml, copied there from runs/unseen_short/<row>/ by the script).

    python scripts/unseen_table.py [--runs docs/results/unseen_short]
    python scripts/unseen_table.py --write-zoo      # also docs/results/zoo.json's unseen-sequence column
                                                    # (then: python scripts/zoo_table.py --page)

Rows that have not run are left out. Training minutes are the sum of log.csv's epoch times.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from pixelseg.engine.config import Config, load_config
from pixelseg.engine.loggers import read_log

ABLATIONS = {
    "recipe": "the recipe (U-Net, ImageNet EfficientNet-Lite2, inverse-sqrt weights + Dice, bf16)",
    "seed1": "the recipe, seed 1",
    "scratch": "encoder from scratch (no ImageNet weights)",
    "no_weights": "no class weights",
    "median_freq": "median-frequency class weights",
    "lovasz": "Lovász-softmax instead of Dice",
    "ohem": "OHEM cross-entropy instead of cross-entropy (seed 0)",
    "ohem_seed1": "OHEM cross-entropy instead of cross-entropy (seed 1)",
    "class_uniform": "half the crops centred on a class drawn uniformly (seed 0)",
    "class_uniform_seed1": "half the crops centred on a class drawn uniformly (seed 1)",
    "ema": "the weights' moving average (train.ema 0.99) validated and kept (seed 0)",
    "ema_seed1": "the weights' moving average (train.ema 0.99) validated and kept (seed 1)",
    "ema_ramp": "the weights' moving average, its decay ramped (train.ema_warmup; seed 0)",
    "ema_ramp_seed1": "the weights' moving average, its decay ramped (train.ema_warmup; seed 1)",
    "encoder_lr": "the encoder at a tenth of the learning rate (optimizer.encoder_lr 0.1; seed 0)",
    "encoder_lr_seed1": "the encoder at a tenth of the learning rate (optimizer.encoder_lr 0.1; seed 1)",
    "weight_decay": "AdamW weight decay 0.01 instead of 1e-4 (seed 0)",
    "weight_decay_seed1": "AdamW weight decay 0.01 instead of 1e-4 (seed 1)",
    "label_smoothing": "cross-entropy with label smoothing 0.1 (seed 0)",
    "label_smoothing_seed1": "cross-entropy with label smoothing 0.1 (seed 1)",
    "fullres": "full resolution (360x480 input)",
    "fp32": "float32 training (seed 0)",
    "fp32_seed1": "float32 training (seed 1)",
}
FEWER_LABELS = {  # docs/fewer_labels.md: each method's rows (seeds 0 and 1) against its baseline's
    "source only (0001TP + 0016E5 labelled)": ["recipe", "seed1"],
    "+ entropy minimisation on 0006R0's images (ADVENT)": ["da_entropy", "da_entropy_seed1"],
    "+ class-balanced self-training on 0006R0's images (CBST)": ["da_self_training", "da_self_training_seed1"],
    "+ entropy minimisation, source in the target's style (FDA + ADVENT)": ["da_fda", "da_fda_seed1"],
    "+ mean teacher on 0006R0's images (self-ensembling, French et al. 2018)":
        ["da_mean_teacher", "da_mean_teacher_seed1"],
    "+ mean teacher on 0006R0's images with source classes pasted onto them (DACS)": ["da_dacs", "da_dacs_seed1"],
    "1/8 of the labels (46 frames), supervised": ["sup_eighth", "sup_eighth_seed1"],
    "1/8 of the labels + 321 unlabelled frames, mean teacher": ["semi_eighth", "semi_eighth_seed1"],
    "1/8 of the labels + 321 unlabelled frames, mean teacher, the labelled loss on the pseudo-labels":
        ["semi_eighth_own_loss", "semi_eighth_own_loss_seed1"],
    "1/8 of the labels + 321 unlabelled frames, mean teacher, class-balanced thresholds (0.5)":
        ["semi_eighth_balanced", "semi_eighth_balanced_seed1"],
    "1/8 of the labels + 321 unlabelled frames, mean teacher, strong views in their own pass":
        ["semi_eighth_separate", "semi_eighth_separate_seed1"],
    "1/8 of the labels + 321 unlabelled frames, mean teacher with all its defaults (ramped EMA decay)":
        ["semi_eighth_ramp", "semi_eighth_ramp_seed1"],
    "1/16 of the labels (23 frames), supervised": ["sup_sixteenth", "sup_sixteenth_seed1"],
    "1/16 of the labels + 344 unlabelled frames, mean teacher (its defaults)":
        ["semi_sixteenth", "semi_sixteenth_seed1"],
}
ZOO = Path(__file__).resolve().parents[1] / "docs" / "results" / "zoo.json"
ARCHITECTURES = {
    "recipe": "U-Net", "deeplabv3plus": "DeepLabv3+", "fpn": "FPN", "pspnet": "PSPNet", "upernet": "UPerNet",
    "linknet": "LinkNet", "gcn": "GCN (Large Kernel Matters)", "deeplabv3": "DeepLabv3", "refinenet": "RefineNet",
    "deeplabv2": "DeepLab v2 (ASPP-L, OS 8)",
    "bisenetv1": "BiSeNet V1", "danet": "DANet", "ccnet": "CCNet", "nonlocal": "Non-local",
    "maskformer": "MaskFormer", "segformer": "SegFormer-B0 (MiT-B0, from scratch)", "enet": "ENet (from scratch)",
    "bisenetv2": "BiSeNet V2 (from scratch)", "segnet_basic": "SegNet-Basic (from scratch)",
    "hrnet": "HRNetV2 (from scratch)", "fcdensenet56": "FC-DenseNet56 (from scratch)",
    "fcdensenet67": "FC-DenseNet67 (from scratch)", "fcdensenet103": "FC-DenseNet103 (from scratch)",
    "fcn8s": "FCN-8s (VGG16, from scratch)", "fcn16s": "FCN-16s (VGG16, from scratch)",
    "fcn32s": "FCN-32s (VGG16, from scratch)", "segnet": "SegNet (VGG16-BN, from scratch)",
    "unet_original": "U-Net, the original (from scratch)", "deeplabv1": "DeepLab v1 LargeFOV (VGG16, from scratch)",
    "dilation": "Dilation8 (VGG16 front-end + context module, from scratch)",
    "deconvnet": "DeconvNet (VGG16-BN, from scratch)", "crfasrnn": "CRF-as-RNN on FCN-8s (from scratch)",
    "setr": "SETR (ViT, from scratch)", "segmenter": "Segmenter (ViT, from scratch)", "dpt": "DPT (ViT, from scratch)",
}


def read(run: Path) -> dict | None:
    path = run / "eval" / "metrics.json"
    if not path.is_file():
        return None
    cpu = run / "cpu.txt"
    config = run / "train_config.yaml"
    return {**json.loads(path.read_text()), "minutes": read_log(run)["minutes"],
            "cpu": cpu.read_text().strip() if cpu.is_file() else "not recorded",
            "config": load_config(config) if config.is_file() else None}


def setting(row: str, config: Config | None) -> str:
    """A zoo row's encoder and what its training config changes beyond the architecture, from the kept config
    (rows kept before pixelseg wrote train_config.yaml: the script's encoder for that row)."""
    if config is None:
        return "MiT-B0, from scratch" if row == "segformer" else "EfficientNet-Lite2, ImageNet"
    model = config.model
    if "encoder" not in model:
        text = "its own encoder, from scratch"
    else:
        name = "EfficientNet-Lite2" if model["encoder"] == "tf_efficientnet_lite2" else model["encoder"]
        text = f"{name}, {'ImageNet' if model.get('pretrained') else 'from scratch'}"
    if config.train.grad_clip is not None:
        text += f", gradient norm clipped to {config.train.grad_clip:g}"
    return text


def write_zoo(runs: dict) -> None:
    """Each architecture row's figures into zoo.json's ``camvid_unseen`` entries (the protocol is zoo.json's)."""
    results = json.loads(ZOO.read_text())
    names = {"recipe": "unet"}
    for model in results["models"]:
        row = next((r for r in ARCHITECTURES if names.get(r, r) == model["name"] and r in runs), None)
        if row is not None:
            m = runs[row]
            encoder = setting(row, m["config"])
            model["camvid_unseen"] = {"miou": round(100 * m["miou"], 2),
                                      "pixel_accuracy": round(100 * m["pixel_accuracy"], 2),
                                      "setting": encoder, "command": f"bash scripts/unseen_camvid.sh {row}"}
    ZOO.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(f"\n{ZOO}: unseen-sequence column written (python scripts/zoo_table.py --page renders it)")


def fewer_labels(runs: dict) -> None:
    """docs/fewer_labels.md's table: per method, each seed's unseen mIoU and their mean."""
    rows = {label: [runs[r] for r in names if r in runs] for label, names in FEWER_LABELS.items()}
    if not any(rows.values()):
        return
    print("\n| training (scored on 0006R0) | seed 0 | seed 1 | mean | training (min, per seed) | CPU |")
    print("|---|---:|---:|---:|---:|---|")
    for label, names in FEWER_LABELS.items():
        cells = [f"{100 * runs[r]['miou']:.2f} %" if r in runs else "not run" for r in names]
        done = rows[label]
        mean = f"{statistics.mean(100 * m['miou'] for m in done):.2f} %" if done else "-"
        minutes = f"{statistics.mean(m['minutes'] for m in done):.1f}" if done else "-"
        cpus = ", ".join(sorted({m["cpu"] for m in done})) or "-"
        print(f"| {label} | {' | '.join(cells)} | {mean} | {minutes} | {cpus} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(ZOO.parent / "unseen_short"))
    parser.add_argument("--write-zoo", action="store_true", help="write the architecture rows into zoo.json")
    args = parser.parse_args()
    folders = sorted(Path(args.runs).iterdir()) if Path(args.runs).is_dir() else []
    runs = {run.name: metrics for run in folders if run.is_dir() and (metrics := read(run)) is not None}
    if not runs:
        raise SystemExit(f"no finished rows in {args.runs} (bash scripts/unseen_camvid.sh)")
    names = next(iter(runs.values()))["classes"]
    print("| change (one per row) | unseen mIoU (0006R0) | pixel acc. | mean class acc. | training (min) |")
    print("|---|---:|---:|---:|---:|")
    for row, label in ABLATIONS.items():
        if row in runs:
            m = runs[row]
            print(f"| {label} | {100 * m['miou']:.2f} % | {100 * m['pixel_accuracy']:.2f} % | "
                  f"{100 * m['mean_class_accuracy']:.2f} % | {m['minutes']:.1f} |")
    pairs = {"bf16": ["recipe", "seed1"], "fp32": ["fp32", "fp32_seed1"], "ohem": ["ohem", "ohem_seed1"],
             "class_uniform": ["class_uniform", "class_uniform_seed1"], "ema": ["ema", "ema_seed1"],
             "ema_ramp": ["ema_ramp", "ema_ramp_seed1"]}
    for precision, rows in pairs.items():
        values = [100 * runs[r]["miou"] for r in rows if r in runs]
        if values:
            spread = f", spread {max(values) - min(values):.2f}" if len(values) > 1 else ""
            print(f"\n{precision}: mean {statistics.mean(values):.2f} % over {len(values)} seed(s){spread}")
    fewer_labels(runs)
    print("\n| architecture (ImageNet EfficientNet-Lite2 encoder) | unseen mIoU (0006R0) | pixel acc. | "
          "training (min) |\n|---|---:|---:|---:|")
    for row, label in ARCHITECTURES.items():
        if row in runs:
            m = runs[row]
            print(f"| {label} | {100 * m['miou']:.2f} % | {100 * m['pixel_accuracy']:.2f} % | {m['minutes']:.1f} |")
    print("\n| row | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
    for row, m in runs.items():
        print(f"| {row} | " + " | ".join(f"{100 * v:.1f}" if v == v else "-" for v in m["iou"]) + " |")
    if args.write_zoo:
        write_zoo(runs)


if __name__ == "__main__":
    main()
