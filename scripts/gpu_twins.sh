#!/bin/bash
# CamVid unseen-street twins on a lent GPU (the device tool), side by side, in one call of about 7 minutes.
# Prepare first: python scripts/gpu_twins_prepare.py (writes .gpu/, ignored by git), then
#   run(command="DEADLINE=420 bash scripts/gpu_twins.sh", carry=[".gpu"], timeout_s=500)
# Twins train on 0001TP + 0016E5 and are scored on 0006R0 (lossless copies) by pixelseg eval on the GPU machine;
# logs.tgz holds every log.csv and metrics.json; the all-data candidate comes back as two float16 halves.
# Usage: bash scripts/gpu_twins.sh [dry]   (dry: 1 epoch of 2 steps, two runs, on whatever device there is)
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD:$PWD/.gpu/site:$PYTHONPATH PIXELSEG_DATA=$PWD/.gpu PIXELSEG_CACHE=/tmp/pxcache PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpuout}; mkdir -p "$OUT"; R=/tmp/gruns; rm -rf $R; mkdir -p $R
set -o pipefail; shopt -s nullglob
DEADLINE=${DEADLINE:-400}; start=$(date +%s)
python3 - <<'PY' 2>&1 | tee $R/env.txt || exit 1
import torch, timm, sys; print("torch", torch.__version__, "timm", timm.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
import pixelseg.models as m; m.create("fpn", num_classes=11, encoder="tf_efficientnet_lite2", pretrained=True); print("weights ok")
PY
X15=configs/camvid_fpn_x15_unseen.yaml; ALL=configs/camvid_fpn_x15_all.yaml; FULL="--set data.crop_size=[512,704]"
if [ "$1" = dry ]; then
  EXTRA="--set train.epochs=1 --set train.steps_per_epoch=2 --set train.val_every=1"
  RUNS=("rec_s0|$X15 --set train.seed=0" "full_all_s0|$ALL $FULL --set train.seed=0")
else
  EXTRA=""
  RUNS=("rec_s0|$X15 --set train.seed=0" "rec_s1|$X15 --set train.seed=1" "rec_s2|$X15 --set train.seed=2"
        "full_s0|$X15 $FULL --set train.seed=0" "full_s1|$X15 $FULL --set train.seed=1"
        "dlv3p_s0|$X15 --set model.name=deeplabv3plus --set train.seed=0"
        "full_all_s0|$ALL $FULL --set train.seed=0")
fi
pids=(); set -f
for r in "${RUNS[@]}"; do
  name=${r%%|*}; args=${r#*|}
  ( python3 -m pixelseg --quiet train $args $EXTRA --set train.out_dir=$R/$name --set data.workers=2 \
      --set train.threads=2 >$R/$name.log 2>&1
    echo "exit $?" >>$R/$name.log
    if [ -d $R/$name/model ] && [[ $name != *_all_* ]]; then
      python3 -m pixelseg --quiet eval $R/$name/model --examples 0 --out $R/$name/eval >$R/$name.eval.log 2>&1
    fi ) &
  pids+=($!)
done
set +f
while :; do
  sleep 10; el=$(( $(date +%s) - start )); alive=0
  for p in "${pids[@]}"; do kill -0 $p 2>/dev/null && alive=$((alive+1)); done
  echo "t=${el}s alive=$alive $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null) $(for r in "${RUNS[@]}"; do n=${r%%|*}; echo -n "$n:$(tail -n1 $R/$n/log.csv 2>/dev/null | cut -c1-40) "; done)"
  [ $alive = 0 ] && break
  if [ $el -gt $DEADLINE ]; then echo "deadline: stopping"; pkill -INT -f "pixelseg --quiet" ; sleep 15; pkill -9 -f "pixelseg --quiet"; break; fi
  if [ $el -lt 120 ] && grep -l "Traceback\|error:" $R/*.log >/dev/null 2>&1; then echo "early failure"; tail -n 30 $R/*.log; pkill -9 -f "pixelseg --quiet"; break; fi
done
for f in $R/*.log; do echo "== $f"; tail -n 6 $f; done
for n in $R/*/eval/metrics.json; do echo "$n $(python3 -c "import json,sys; d=json.load(open('$n')); print(d['miou'])")"; done
tar czf $OUT/logs.tgz -C $R --exclude='*.pt' --exclude='*.safetensors' .
if [ -f $R/full_all_s0/model/model.safetensors ]; then python3 - $R/full_all_s0/model $OUT <<'PY'
import sys, shutil
from safetensors.torch import load_file, save_file
src, out = sys.argv[1], sys.argv[2]
state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(f"{src}/model.safetensors").items()}
keys = list(state); half = len(keys) // 2
save_file({k: state[k] for k in keys[:half]}, f"{out}/full_all_part1.safetensors")
save_file({k: state[k] for k in keys[half:]}, f"{out}/full_all_part2.safetensors")
shutil.copy(f"{src}/config.json", f"{out}/full_all_config.json")
PY
fi
ls -la $OUT
