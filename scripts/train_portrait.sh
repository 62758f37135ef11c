#!/usr/bin/env bash
# The shipped `portrait` model (docs/models/portrait.md): train configs/portrait_lite0.yaml (1,153 portraits; the
# 137 whose index ends in 0 held out for validation), export it in float16 to pixelseg/weights/portrait, and score
# it on the held-out portraits (mIoU, person F1, boundary F1) and against the previous figures.
#   bash scripts/train_portrait.sh          (or: make train-portrait)
# A stopped run continues: the script passes --resume when runs/portrait_lite0/last.pt exists without a model; a
# finished run (runs/portrait_lite0/model) is exported and scored again, not retrained.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=runs/portrait_lite0
if [ ! -d "$RUN/model" ]; then
  resume=()
  [ -f "$RUN/last.pt" ] && resume=(--resume)
  "$BIN/pixelseg" train configs/portrait_lite0.yaml "${resume[@]}"
fi
"$BIN/python" - "$RUN" <<'PY'
import sys

import torch

import pixelseg

model = pixelseg.load(f"{sys.argv[1]}/model")
model.meta["data"]["root"] = "portrait"  # a named dataset under $PIXELSEG_DATA, not this machine's path
model.meta["data"]["options"] = {"splits_dir": "portrait_last_digit_0"}  # the shipped split lists, by name
model.meta["inference_long_side"] = 256  # any photo's longer side to the training images' 256 pixels
model.meta["encoder_weights"] = model.meta.get("encoder_weights", "").split(" (/")[0]  # no local path
pixelseg.save_model(model, "pixelseg/weights/portrait", dtype=torch.float16)
print("shipped: pixelseg/weights/portrait")
PY
"$BIN/pixelseg" eval portrait --backend eager --boundary-f1 --out "$RUN/eval_val" --examples 6
