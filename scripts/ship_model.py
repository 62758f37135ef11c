"""Write a trained model as a shipped one: float16 weights and a meta that names no path of this machine.

A run's meta records where its data and encoder weights were on the machine that trained it; a shipped model must
name its dataset by name (resolved under ``$PIXELSEG_DATA``), its split lists by their shipped name, and its encoder
weights without a local path. Used by scripts/train_default.sh (camvid) and scripts/train_portrait.sh (portrait):

    python scripts/ship_model.py runs/portrait_lite0/model pixelseg/weights/portrait \\
        --root portrait --splits-dir portrait_last_digit_0 --set inference_long_side=256
"""

from __future__ import annotations

import argparse
import json

import torch

import pixelseg


def portable(meta: dict, root: str, splits_dir: str | None, val_split: str | None) -> dict:
    """``meta`` with its data named portably and the encoder weights' local path dropped."""
    meta = dict(meta)
    data = dict(meta.get("data", {}))
    data["root"] = root  # a named dataset under $PIXELSEG_DATA, not this machine's path
    data["options"] = {"splits_dir": splits_dir} if splits_dir else {}  # the shipped split lists, by name
    if val_split:
        data["val_split"] = val_split  # what `pixelseg eval NAME` scores
    meta["data"] = data
    if "encoder_weights" in meta:  # "ImageNet, from the installed package X (/path/to/file)" -> without the path
        meta["encoder_weights"] = meta["encoder_weights"].split(" (/")[0]
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a model folder or checkpoint (runs/NAME/model)")
    parser.add_argument("target", help="the folder to write (pixelseg/weights/NAME)")
    parser.add_argument("--root", required=True, help="the dataset's name under $PIXELSEG_DATA")
    parser.add_argument("--splits-dir", help="the shipped split lists' name (pixelseg/data/split_lists/NAME)")
    parser.add_argument("--val-split", help="the split `pixelseg eval NAME` scores")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="one more meta entry, its value as JSON (e.g. inference_long_side=256)")
    args = parser.parse_args(argv)
    model = pixelseg.load(args.source)
    model.meta = portable(model.meta, args.root, args.splits_dir, args.val_split)
    for entry in args.set:
        key, _, value = entry.partition("=")
        model.meta[key] = json.loads(value)
    pixelseg.save_model(model, args.target, dtype=torch.float16)
    print(f"shipped: {args.target}")


if __name__ == "__main__":
    main()
