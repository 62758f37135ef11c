#!/usr/bin/env bash
# Weak labels on CamVid (docs/fewer_labels.md), on the unseen-sequence short protocol (configs/camvid_unseen_short.yaml):
# scribbles or boxes drawn from the masks of the 367 frames of 0001TP + 0016E5, trained with scribble_crf or
# box_refresh, scored on the full labels of 0006R0 (never seen), against the recipe rows trained on full masks.
#   bash scripts/weak_camvid.sh                 # both: scribbles, boxes
#   bash scripts/weak_camvid.sh scribbles       # one
#   bash scripts/weak_camvid.sh scribbles:0     # scribbles with another CRF weight (here none: partial CE alone)
# Each run: runs/weak/camvid_<kind>_run (log.csv, model, eval/metrics.json, copied to docs/results/weak_camvid_<kind>);
# a stopped run continues (--resume), a finished one is scored again, not retrained.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/weak_rows.sh
BIN=${BIN:-.venv/bin}
DATA=${PIXELSEG_DATA:-../shared/data}/camvid
SPLIT=train_0001TP_0016E5
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(scribbles boxes)
for row in "${kinds[@]}"; do
  weak_row "$row"
  weak=runs/weak/camvid_$kind run=runs/weak/camvid_${name}_run
  [ -d "$weak" ] || "$BIN/pixelseg" data weak "$DATA" --layout camvid --kind "$kind" --split "$SPLIT" \
    --splits-dir camvid_sequences --out "$weak"
  if [ ! -d "$run/model" ]; then
    resume=()
    [ -f "$run/last.pt" ] && resume=(--resume)
    "$BIN/pixelseg" --quiet train configs/camvid_unseen_short.yaml --set data.layout=folder --set data.root="$weak" \
      --set "data.options={}" --set data.train_split="$SPLIT" --set data.val_split=null "${method[@]}" \
      --set train.out_dir="$run" "${resume[@]}"
  fi
  "$BIN/pixelseg" --quiet eval "$run/model" --backend eager --data "$DATA" --layout camvid \
    --splits-dir camvid_sequences --split val_0006R0 --out "$run/eval" --examples 0
  kept=docs/results/weak_camvid_$name
  mkdir -p "$kept/eval" && cp "$run/eval/metrics.json" "$kept/eval/" && cp "$run/log.csv" "$kept/"
  grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' > "$kept/cpu.txt"
  cp "$weak/quality_$SPLIT.json" "$kept/" 2>/dev/null || true
done
