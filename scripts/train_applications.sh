#!/usr/bin/env bash
# The application recipes of docs/applications.md: train each dataset's config (RECIPES below) on its training
# list and score it on its validation split (images never trained on) with `pixelseg eval` (per-class IoU, F1,
# precision, recall, boundary F1); metrics land in runs/apps/<name>/eval/metrics.json, and
# scripts/applications_table.py makes the tables. One run at a time: two trainings on 2 cores are several times
# slower each.
#   bash scripts/train_applications.sh                    # retina roads weeds faces fashion
#   bash scripts/train_applications.sh retina weeds       # some of them
# A stopped run continues (--resume) when the script is run again; a finished one is scored again, not retrained.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUNS=${RUNS:-runs/apps}  # where each run goes (runs/apps/<name>)
NAMES=("$@")
[ ${#NAMES[@]} -eq 0 ] && NAMES=(retina roads weeds faces fashion)
declare -A RECIPES=([retina]=retina_lite0 [roads]=roads_lite0 [weeds]=weeds_lite0 [faces]=faces_lite0
                    [fashion]=fashion_lite2)
for name in "${NAMES[@]}"; do
  [ -n "${RECIPES[$name]:-}" ] || { echo "no recipe for $name (names: ${!RECIPES[*]})" >&2; exit 2; }
  config=configs/${RECIPES[$name]}.yaml
  out=$RUNS/$name
  if [ ! -d "$out/model" ]; then
    resume=()
    [ -f "$out/last.pt" ] && resume=(--resume)
    "$BIN/pixelseg" --quiet train "$config" --set "train.out_dir=$out" "${resume[@]}"
  fi
  "$BIN/pixelseg" --quiet eval "$out/model" --backend eager --boundary-f1 --out "$out/eval" --examples 4 --examples-by score
done
