#!/usr/bin/env bash
# CamVid on the unseen-sequence protocol at a short schedule (configs/camvid_unseen_short.yaml: train on 0001TP +
# 0016E5, score on 0006R0, half resolution, 8 epochs), one change per row. Every row is scored on 0006R0 by
# `pixelseg eval` (plain, eager) and lands in runs/unseen_short/<row>/eval/metrics.json, copied with its log.csv,
# its whole training config (train_config.yaml) and the CPU's name to docs/results/unseen_short/<row>/;
# scripts/unseen_table.py collects them for docs/models/camvid.md (ablations) and docs/model_zoo.md (the
# unseen-sequence column).
#   bash scripts/unseen_camvid.sh                       # every row
#   bash scripts/unseen_camvid.sh recipe scratch        # some rows
# A stopped row (Ctrl-C saves last.pt; last.pt is also saved every 10 steps) continues with --resume when the
# script is run again for it.
# Rows:
#   recipe        the config as it is (U-Net, ImageNet EfficientNet-Lite2, inverse-sqrt weights + Dice, bf16 auto)
#   seed1         the recipe with seed 1;   fp32, fp32_seed1: the recipe in float32 (train.amp=off), seeds 0 and 1
#   scratch       the encoder from random weights (pretrained=false)
#   median_freq   median-frequency class weights (the previous shipped model's)
#   no_weights    no class weights
#   lovasz        Lovász-softmax in place of Dice
#   ohem          OHEM cross-entropy (the hard pixels: label probability below 0.7, at least 10 %) in place of CE
#   class_uniform half the crops centred on a pixel of a class drawn uniformly from the frame's classes
#   ema           validate and ship the weights' moving average (train.ema 0.99 per step, fixed from the first step
#                 as it was measured: train.ema_warmup false)
#   ema_ramp      the same with the decay ramped as min(1 - 1/(step + 1), 0.99) (train.ema_warmup, the default)
#   encoder_lr    the ImageNet encoder fine-tuned at a tenth of the learning rate (optimizer.encoder_lr 0.1)
#   weight_decay  AdamW's weight decay at 0.01 (its paper's default) instead of the recipe's 1e-4
#   label_smoothing   cross-entropy with label smoothing 0.1 (loss.ce_label_smoothing)
#   fullres       full resolution (360x480 input, 352x480 crops)
#   deeplabv3plus, deeplabv3, deeplabv2, fpn, pspnet, upernet, linknet, gcn, refinenet, bisenetv1, danet, ccnet,
#   nonlocal, maskformer   the architecture on the same ImageNet EfficientNet-Lite2 encoder (refinenet with its
#                 gradients' norm clipped to 1: its decoder has no normalisation, and without the clip its loss went
#                 from 0.98 to 72,236 in epoch 3)
#   segformer     SegFormer-B0 with its own MiT encoder, from scratch (no offline ImageNet MiT weights)
#   enet, bisenetv2, segnet_basic, hrnet, fcdensenet56   the architecture with its own encoder, from scratch (ENet,
#                 BiSeNet V2, SegNet-Basic and FC-DenseNet are trained from scratch in their papers; HRNet has no
#                 offline ImageNet weights); FC-DenseNets under tcmalloc where installed, as scripts/train_zoo.sh
#   fcdensenet67, fcdensenet103, fcn8s, fcn16s, fcn32s, segnet, unet_original, deeplabv1, dilation, deconvnet,
#   crfasrnn, setr, segmenter, dpt   the same, at each one's defaults: the VGG16 designs (FCN, SegNet, DeepLab v1,
#                 Dilation, DeconvNet, CRF-as-RNN on FCN-8s) and the ViT ones (SETR, Segmenter, DPT) have no
#                 offline ImageNet weights here, so they start from random weights where their papers start from
#                 ImageNet
# Fewer labels (docs/fewer_labels.md; the source-only and all-labels baselines are the recipe and seed1 rows):
#   da_entropy, da_self_training   domain adaptation: 0006R0's images without labels as the target (data.unlabelled)
#   da_fda        da_entropy with the source images in the target's style (FDA, source_style 0.03: about the
#                 paper's 5 lowest frequencies on 176x240 crops)
#   da_mean_teacher   the mean teacher (its defaults) with 0006R0's images as its unlabelled data: French et al.
#                 2018's self-ensembling for domain adaptation, with CutMix between target images
#   da_dacs       da_mean_teacher with DACS's cross-domain mix (method.mix_labelled: half of each source crop's
#                 classes pasted with their labels onto a target crop) in place of CutMix between target images
#   sup_eighth    supervised on 1/8 of the labels (train_eighth: every 8th frame, 46), 64 epochs (the recipe's steps)
#   semi_eighth   the same 46 labelled frames + the other 321 as unlabelled images, mean teacher with the strong
#                 views in the labelled batch's forward pass (method.separate_strong false); the rows below but the
#                 last build on it
#   semi_eighth_own_loss   semi_eighth with the labelled loss (class weights + Dice) on the pseudo-labels
#                 (method.unlabelled_loss: training) instead of plain cross-entropy
#   semi_eighth_balanced   semi_eighth with class-balanced thresholds for the pseudo-labels (method.class_balanced
#                 0.5: each class keeps the pixels above its own running median confidence, capped at 0.95)
#   semi_eighth_separate   semi_eighth with the strong views in a forward pass of their own (method.separate_strong
#                 true, the default: their batch-norm statistics apart from the labelled batch's, as UniMatch's code)
#   semi_eighth_ramp   semi_eighth_separate with the EMA decay ramped (the mean teacher's defaults, all of them)
#   sup_sixteenth, semi_sixteenth   the same pair on 1/16 of the labels (train_sixteenth: every 16th frame, 23, a
#                 subset of train_eighth), 160 epochs (sup_eighth's 320 steps); semi_sixteenth with the mean teacher's
#                 defaults (strong views in their own pass) and the other 344 frames as unlabelled images
# The mean-teacher rows above (semi_*, da_mean_teacher) keep the EMA decay fixed from the first step
# (method.ema_warmup false), as they were measured; da_dacs has the ramped decay, the default since.
# Append _seed1 to a row for its second seed (seed1 alone is the recipe with seed 1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/keep_run.sh
BIN=${BIN:-.venv/bin}
ROWS=("$@")
[ ${#ROWS[@]} -eq 0 ] && ROWS=(recipe scratch no_weights median_freq deeplabv3plus fpn pspnet segformer fp32 seed1 \
  fp32_seed1 lovasz)
DATA=${PIXELSEG_DATA:-../shared/data}
tcmalloc=$(ls /usr/lib/*/libtcmalloc.so.4 2>/dev/null | head -n 1 || true)
image_links() {  # image_links FOLDER LIST [exclude]: symlinks to the CamVid images named in (or, exclude: not in) LIST
  local folder=$1 list=pixelseg/data/split_lists/camvid_sequences/$2.txt
  mkdir -p "$folder"
  for image in "$DATA"/camvid/train/*.png "$DATA"/camvid/val/*.png; do
    stem=$(basename "$image" .png)
    if grep -qx "$stem" "$list"; then [ "${3:-}" = exclude ] && continue; else [ "${3:-}" = exclude ] || continue; fi
    ln -sf "$(realpath "$image")" "$folder/$stem.png"
  done
}
for row in "${ROWS[@]}"; do
  base=$row seed=()
  case $row in
    *_seed1)     base=${row%_seed1} seed=(--set train.seed=1) ;;  # fp32_seed1 too: fp32 with seed 1
  esac
  case $base in
    recipe)      changes=() ;;
    seed1)       changes=(--set train.seed=1) ;;
    fp32)        changes=(--set train.amp=off) ;;
    scratch)     changes=(--set model.pretrained=false) ;;
    median_freq) changes=(--set loss.class_weights=median_frequency) ;;
    no_weights)  changes=(--set loss.class_weights=null) ;;
    lovasz)      changes=(--set loss.dice=0 --set loss.lovasz=0.5) ;;
    ohem)        changes=(--set loss.ce=0 --set loss.ohem=1.0) ;;
    class_uniform) changes=(--set data.class_uniform_crop=0.5) ;;
    ema)         changes=(--set train.ema=0.99 --set train.ema_warmup=false) ;;
    ema_ramp)    changes=(--set train.ema=0.99) ;;
    encoder_lr)  changes=(--set optimizer.encoder_lr=0.1) ;;
    weight_decay) changes=(--set optimizer.weight_decay=0.01) ;;
    label_smoothing) changes=(--set loss.ce_label_smoothing=0.1) ;;
    fullres)     changes=(--set data.base_scale=1.0 --set "data.crop_size=[352,480]") ;;
    deeplabv3plus|deeplabv3|deeplabv2|fpn|pspnet|upernet|linknet|gcn|bisenetv1|danet|ccnet|nonlocal|maskformer)
      changes=(--set "model.name=$base") ;;
    refinenet)   changes=(--set model.name=refinenet --set train.grad_clip=1.0) ;;
    segformer)   changes=(--set "model={name: segformer, variant: b0}") ;;
    enet|bisenetv2|segnet_basic|hrnet|fcdensenet56|fcdensenet67|fcdensenet103|fcn8s|fcn16s|fcn32s|segnet|\
    unet_original|deeplabv1|dilation|deconvnet|crfasrnn|setr|segmenter|dpt) changes=(--set "model={name: $base}") ;;
    da_entropy|da_self_training|da_fda|da_mean_teacher|da_dacs)
      target=runs/unseen_short/target_0006R0
      [ -d "$target" ] || image_links "$target" val_0006R0
      name=${base#da_} extra=()
      [ "$name" = entropy ] && name=entropy_min
      if [ "$name" = fda ]; then name=entropy_min; extra=(--set method.source_style=0.03); fi
      [ "$name" = dacs ] && name=mean_teacher extra=(--set method.mix_labelled=true)
      changes=(--set "data.unlabelled=$target" --set "method.name=$name" "${extra[@]}")
      [ "$base" = da_mean_teacher ] && changes+=(--set method.ema_warmup=false) ;;
    sup_eighth|sup_sixteenth|semi_eighth|semi_eighth_own_loss|semi_eighth_balanced|semi_eighth_separate|semi_eighth_ramp|\
    semi_sixteenth)
      part=sixteenth epochs=160 rest=runs/unseen_short/unlabelled_fifteen_sixteenths  # the same 320 labelled steps
      [[ $base == *_eighth* ]] && part=eighth epochs=64 rest=runs/unseen_short/unlabelled_seven_eighths
      changes=(--set "data.train_split=train_$part" --set "train.epochs=$epochs" --set "train.val_every=$epochs")
      if [[ $base == semi_* ]]; then
        [ -d "$rest" ] || { image_links "$rest" "train_$part" exclude; find "$rest" -name '0006R0_*' -delete; }
        changes+=(--set "data.unlabelled=$rest" --set method.name=mean_teacher)
        [ "$base" = semi_eighth_ramp ] || changes+=(--set method.ema_warmup=false)
      fi
      case $base in  # the 1/8 variants build on one pass for labelled and strong views; 1/16 keeps the defaults
        semi_eighth|semi_eighth_own_loss|semi_eighth_balanced) changes+=(--set method.separate_strong=false) ;;
      esac
      [ "$base" = semi_eighth_own_loss ] && changes+=(--set method.unlabelled_loss=training)
      [ "$base" = semi_eighth_balanced ] && changes+=(--set method.class_balanced=0.5)
      [ "$base" = semi_eighth_separate ] && changes+=(--set method.separate_strong=true) ;;
    *) echo "unknown row $row (see the list at the top of $0)" >&2; exit 2 ;;
  esac
  out=runs/unseen_short/$row
  resume=()
  [ -f "$out/last.pt" ] && [ ! -d "$out/model" ] && resume=(--resume)
  preload=()
  [[ $base == fcdensenet* && -n $tcmalloc ]] && preload=(env "LD_PRELOAD=$tcmalloc")
  started=$(date +%s)
  "${preload[@]}" "$BIN/pixelseg" --quiet train configs/camvid_unseen_short.yaml --set "train.out_dir=$out" \
    "${changes[@]}" "${seed[@]}" "${resume[@]}"
  "$BIN/pixelseg" --quiet eval "$out/model" --backend eager --out "$out/eval" --examples 0
  keep_run "$out" "docs/results/unseen_short/$row"  # the scores and the log outlive runs/ (scripts/unseen_table.py reads them)
  echo "$row: $(( $(date +%s) - started )) s wall (train + eval${resume:+, this sitting only})" \
    | tee -a runs/unseen_short/wall_times.txt
done
