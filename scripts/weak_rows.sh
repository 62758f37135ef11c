# Sourced by scripts/weak_camvid.sh and scripts/weak_portrait.sh: what one ROW argument of theirs trains.
#   weak_row boxes | scribbles | scribbles:WEIGHT
# sets kind (the weak targets: boxes or scribbles), name (the run's: the row, scribbles_wWEIGHT for a weight) and
# method (the trainer's options: box_refresh, or scribble_crf with the CRF weight; `scribbles` keeps the 0.5 its
# recorded rows were trained with).
weak_row() {
  kind=${1%%:*} name=$1
  case $1 in
    boxes) method=(--set method.name=box_refresh) ;;
    scribbles) method=(--set method.name=scribble_crf --set method.weight=0.5) ;;
    scribbles:*) method=(--set method.name=scribble_crf --set "method.weight=${1#*:}") name=scribbles_w${1#*:} ;;
    *) echo "unknown kind: $1 (boxes, scribbles or scribbles:WEIGHT)" >&2; exit 2 ;;
  esac
}
