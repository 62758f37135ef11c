# Sourced by the experiment scripts (unseen_camvid.sh, fewer_labels_roads.sh), from the repository root.
keep_run() {  # keep_run OUT KEPT: a finished row's scores, log, training config and CPU name, kept in the repo
  local out=$1 kept=$2
  mkdir -p "$kept/eval" && cp "$out/eval/metrics.json" "$kept/eval/"
  cp "$out/log.csv" "$out/train_config.yaml" "$kept/"
  grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' > "$kept/cpu.txt"
}
