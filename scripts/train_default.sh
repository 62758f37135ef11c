#!/usr/bin/env bash
# Reproduces the shipped CamVid model (pixelseg/weights/camvid), from scratch: no ImageNet weights anywhere.
#   bash scripts/train_default.sh            # about 70 min + 50 min on 2 CPU cores; minutes on a GPU
# Stage 1: U-Net / ResNet-18 at half resolution, 60 epochs (configs/camvid_unet_cpu.yaml).
# Stage 2: the same network fine-tuned at the full 360x480 resolution, 12 epochs (configs/camvid_default.yaml).
# Then the best stage-2 weights are stored in half precision (23.8 MiB) as the package's "camvid" model.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
"$BIN/pixelseg" train configs/camvid_unet_cpu.yaml "$@"
"$BIN/pixelseg" train configs/camvid_default.yaml "$@"
"$BIN/python" - <<'PY'
import torch

import pixelseg

model = pixelseg.load("runs/camvid_default/model")
model.meta["data"]["root"] = "camvid"  # a named dataset under $PIXELSEG_DATA, not this machine's path
pixelseg.save_model(model, "pixelseg/weights/camvid", dtype=torch.float16)
print("shipped: pixelseg/weights/camvid")
PY
"$BIN/pixelseg" eval camvid --split val --out runs/camvid_default/eval_shipped
"$BIN/pixelseg" eval camvid --split val --flip --scales 0.75,1,1.25 --crf --out runs/camvid_default/eval_shipped_tta_crf
