#!/usr/bin/env bash
# Semi-supervised learning where the labels are what limits the model: the roads recipe (configs/roads_lite0.yaml,
# 60 labelled aerial tiles, scored on the 20 validation tiles it never trains on) with a quarter of its labels.
# docs/fewer_labels.md has the protocol and the table; each row lands in runs/fewer_labels_roads/<row>/ and its
# scores, log, training config and CPU name are kept in docs/results/fewer_labels_roads/<row>/.
#   bash scripts/fewer_labels_roads.sh                   # every row
#   bash scripts/fewer_labels_roads.sh sup_quarter        # some rows
# Rows (append _seed1 for the second seed):
#   all           the recipe as it is: all 60 labelled tiles, 24 epochs (168 steps)
#   sup_quarter   a quarter of the labels (train_quarter: every 4th tile, 15), 168 epochs of one batch: the
#                 recipe's 168 labelled steps
#   semi_quarter_ramp   the same 15 labelled tiles + the other 45 as images without labels (data.unlabelled), mean
#                 teacher with its defaults (its EMA decay ramped up as 1 - 1/(step + 1) to 0.99)
#   semi_quarter  the same with the decay fixed at 0.99 from the first step (method.ema_warmup false), as the mean
#                 teacher was before the ramp
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/keep_run.sh
BIN=${BIN:-.venv/bin}
ROWS=("$@")
[ ${#ROWS[@]} -eq 0 ] && ROWS=(all sup_quarter sup_quarter_seed1 semi_quarter_ramp semi_quarter_ramp_seed1 semi_quarter)
DATA=${PIXELSEG_DATA:-../shared/data}
splits=pixelseg/data/split_lists/roads_last_digit_3_8
quarter=(--set data.train_split=train_quarter --set train.epochs=168 --set train.val_every=168)
for row in "${ROWS[@]}"; do
  base=$row seed=()
  case $row in
    *_seed1) base=${row%_seed1} seed=(--set train.seed=1) ;;
  esac
  case $base in
    all)          changes=() ;;
    sup_quarter)  changes=("${quarter[@]}") ;;
    semi_quarter|semi_quarter_ramp)
      rest=runs/fewer_labels_roads/unlabelled_three_quarters
      if [ ! -d "$rest" ]; then  # symlinks to the training tiles outside the quarter (never a validation tile)
        rm -rf "$rest.partial" && mkdir -p "$rest.partial"
        for stem in $(grep -v '^#' "$splits/train.txt" | grep -vxF -f <(grep -v '^#' "$splits/train_quarter.txt")); do
          tile=$DATA/roads/images/train/$stem.jpg
          [ -f "$tile" ] || { echo "$tile: no such tile (set PIXELSEG_DATA to the folder that holds roads/)" >&2; exit 2; }
          ln -s "$(realpath "$tile")" "$rest.partial/$stem.jpg"
        done
        mv "$rest.partial" "$rest"
      fi
      changes=("${quarter[@]}" --set "data.unlabelled=$rest" --set method.name=mean_teacher)
      [ "$base" = semi_quarter ] && changes+=(--set method.ema_warmup=false) ;;
    *) echo "unknown row $row (see the list at the top of $0)" >&2; exit 2 ;;
  esac
  out=runs/fewer_labels_roads/$row
  resume=()
  [ -f "$out/last.pt" ] && [ ! -d "$out/model" ] && resume=(--resume)
  started=$(date +%s)
  "$BIN/pixelseg" --quiet train configs/roads_lite0.yaml --set "train.out_dir=$out" "${changes[@]}" "${seed[@]}" \
    "${resume[@]}"
  "$BIN/pixelseg" --quiet eval "$out/model" --backend eager --boundary-f1 --out "$out/eval" --examples 0
  keep_run "$out" "docs/results/fewer_labels_roads/$row"
  echo "$row: $(( $(date +%s) - started )) s wall (train + eval${resume:+, this sitting only})" \
    | tee -a runs/fewer_labels_roads/wall_times.txt
done
