#!/usr/bin/env bash
# Weak labels on portraits (docs/fewer_labels.md): the shipped portrait recipe (configs/portrait_lite0.yaml, 8 epochs)
# trained on boxes or on scribbles drawn from the masks of the 1,153 training portraits, then scored on the full masks
# of the 137 held-out portraits, against the full-mask model of the same recipe (docs/models/portrait.md).
#   bash scripts/weak_portrait.sh                 # both: boxes (box_refresh) and scribbles (scribble_crf)
#   bash scripts/weak_portrait.sh scribbles       # one
#   bash scripts/weak_portrait.sh scribbles:0     # scribbles with another CRF weight (here none: partial CE alone)
# Each run: runs/weak/portrait_<kind>_run (log.csv, model, eval_val/metrics.json); a stopped run continues (--resume),
# a finished one is scored again, not retrained. About 20-25 training min each on 2 CPU cores with bf16.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/weak_rows.sh
BIN=${BIN:-.venv/bin}
DATA=${DATA:-../shared/data/portrait}
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(boxes scribbles)
for row in "${kinds[@]}"; do
  weak_row "$row"
  weak=runs/weak/portrait_$kind run=runs/weak/portrait_${name}_run
  [ -d "$weak" ] || "$BIN/pixelseg" data weak "$DATA" --kind "$kind" --split train \
    --splits-dir portrait_last_digit_0 --out "$weak"
  if [ ! -d "$run/model" ]; then
    resume=()
    [ -f "$run/last.pt" ] && resume=(--resume)
    "$BIN/pixelseg" train configs/portrait_lite0.yaml --set data.root="$weak" --set data.val_split=null \
      "${method[@]}" --set train.out_dir="$run" "${resume[@]}"
  fi
  "$BIN/pixelseg" eval "$run/model" --backend eager --data "$DATA" --splits-dir portrait_last_digit_0 --split val \
    --boundary-f1 --out "$run/eval_val" --examples 4 --examples-by score
done
