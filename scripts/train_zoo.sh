#!/usr/bin/env bash
# Train and evaluate architectures of the zoo with the shared recipe of configs/zoo_camvid_cpu.yaml.
#   bash scripts/train_zoo.sh enet segformer unet fpn     # default: every architecture, cheapest first
# Each run writes runs/zoo/<name>/ (log.csv, model/, eval_val/metrics.json); scripts/zoo_table.py collects them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  MODELS=(enet segformer unet fpn deeplabv3plus segnet_basic upernet fcn32s fcn16s fcn8s deeplabv3 pspnet segnet
          unet_original fcdensenet56 fcdensenet67 fcdensenet103)
fi
for name in "${MODELS[@]}"; do
  started=$(date +%s)
  "$BIN/pixelseg" --quiet train configs/zoo_camvid_cpu.yaml --set "model.name=$name" --set "train.out_dir=runs/zoo/$name"
  "$BIN/pixelseg" --quiet eval "runs/zoo/$name/model" --split val --out "runs/zoo/$name/eval_val" --examples 0
  echo "$name: $(( $(date +%s) - started )) s wall (train + eval)" | tee -a runs/zoo/wall_times.txt
done
