#!/usr/bin/env bash
# Train and evaluate architectures of the zoo with the shared recipe of configs/zoo_camvid_cpu.yaml.
#   bash scripts/train_zoo.sh enet segformer unet fpn     # default: every architecture, cheapest first
# Each run writes runs/zoo/<name>/ (log.csv, model/, eval_val/metrics.json); scripts/zoo_table.py collects them.
# Runs that take more than one sitting on a CPU: Ctrl-C (or SIGTERM) stops after the current step and saves
# last.pt, and last.pt is also saved every 10 steps; running the script again for that name continues the run
# (--resume) instead of starting over. FC-DenseNets run under tcmalloc when it is installed (Debian's
# libgoogle-perftools4): 1.87x faster training steps for FC-DenseNet56 on the CPU (docs/performance.md, memory
# allocator); the arithmetic is the same. On a CPU without AVX-512, UPerNet and PSPNet train in the contiguous
# layout (train.channels_last=false): 1.27x and 1.12x faster steps there (docs/performance.md, memory layout).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  MODELS=(enet segformer unet fpn deeplabv3plus segnet_basic upernet fcn32s fcn16s fcn8s deeplabv3 pspnet segnet
          unet_original fcdensenet56 fcdensenet67 fcdensenet103)
fi
tcmalloc=$(ls /usr/lib/*/libtcmalloc.so.4 2>/dev/null | head -n 1 || true)
avx512=$(grep -c -m 1 -w avx512f /proc/cpuinfo 2>/dev/null || true)
for name in "${MODELS[@]}"; do
  started=$(date +%s)
  run="runs/zoo/$name"
  resume=()
  if [ -f "$run/last.pt" ] && [ ! -d "$run/model" ]; then
    resume=(--resume)
    echo "$name: continuing the stopped run in $run"
  fi
  preload=()
  if [[ $name == fcdensenet* && -n $tcmalloc ]]; then
    preload=(env "LD_PRELOAD=$tcmalloc")
  fi
  layout=()
  if [[ ($name == upernet || $name == pspnet) && $avx512 != 1 ]]; then
    layout=(--set train.channels_last=false)
  fi
  "${preload[@]}" "$BIN/pixelseg" --quiet train configs/zoo_camvid_cpu.yaml --set "model.name=$name" \
    --set "train.out_dir=$run" --set train.checkpoint_every=10 "${layout[@]}" "${resume[@]}"
  "$BIN/pixelseg" --quiet eval "$run/model" --split val --out "$run/eval_val" --examples 0
  echo "$name: $(( $(date +%s) - started )) s wall (train + eval${resume:+, this sitting only})" \
    | tee -a runs/zoo/wall_times.txt
done
