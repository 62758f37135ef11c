#!/usr/bin/env bash
# Ablation of the training choices of the shipped CamVid model (docs/models/camvid.md), at a short schedule that
# fits 2 CPU cores: the stage-1 recipe (configs/camvid_unet_cpu.yaml: U-Net/ResNet-18, half resolution, from
# scratch) for EPOCHS epochs (default 12), changing one thing per row. Each row is scored on CamVid val at the full
# 360x480 resolution by `pixelseg eval`.
#   bash scripts/ablation_camvid.sh                 # every row: runs/ablation_train/e12/<row>/
#   EPOCHS=60 bash scripts/ablation_camvid.sh plain_ce   # one row, at the full stage-1 schedule
# Rows:
#   recipe        CE with median-frequency class weights + 0.5 x soft Dice; scale 0.75-1.5, crops, flips, colour jitter
#   plain_ce      unweighted cross-entropy only (no class weights, no Dice)
#   focal         focal loss (gamma 2) with median-frequency weights instead of CE + Dice
#   weak_aug      no random scale and no colour jitter (crops and flips only)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
EPOCHS=${EPOCHS:-12}
ROWS=("$@")
[ ${#ROWS[@]} -eq 0 ] && ROWS=(recipe plain_ce weak_aug focal)
for row in "${ROWS[@]}"; do
  case $row in
    recipe)   changes=() ;;
    plain_ce) changes=(--set loss.class_weights=null --set loss.dice=0) ;;
    focal)    changes=(--set loss.ce=0 --set loss.dice=0 --set loss.focal=1) ;;
    weak_aug) changes=(--set "data.scale_range=[1.0,1.0]" --set data.color_jitter=0) ;;
    *) echo "unknown row $row (recipe, plain_ce, focal, weak_aug)" >&2; exit 2 ;;
  esac
  out=runs/ablation_train/e$EPOCHS/$row
  started=$(date +%s)
  "$BIN/pixelseg" --quiet train configs/camvid_unet_cpu.yaml --set "train.epochs=$EPOCHS" \
    --set "train.val_every=$EPOCHS" --set "train.out_dir=$out" "${changes[@]}"
  "$BIN/pixelseg" --quiet eval "$out/model" --split val --out "$out/eval_val" --examples 0
  echo "$row: $(( $(date +%s) - started )) s wall (train + eval), $EPOCHS epochs" | tee -a runs/ablation_train/e$EPOCHS/wall_times.txt
done
