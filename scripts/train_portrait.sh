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
# float16, the data named portably, any photo's longer side to the training images' 256 pixels
"$BIN/python" scripts/ship_model.py "$RUN/model" pixelseg/weights/portrait --root portrait \
  --splits-dir portrait_last_digit_0 --set inference_long_side=256
"$BIN/pixelseg" eval portrait --backend eager --boundary-f1 --out "$RUN/eval_val" --examples 6
