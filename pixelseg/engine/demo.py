"""``pixelseg demo``: generate the shapes dataset, train a small U-Net, evaluate it and predict with it."""

from __future__ import annotations

import time
from pathlib import Path

import pixelseg
from pixelseg.data import make_shapes_dataset, open_dataset
from pixelseg.engine.config import config_from_dict
from pixelseg.engine.evaluate import evaluate
from pixelseg.engine.predict import predict_files
from pixelseg.engine.trainer import train


def demo_config(data_dir: Path, run_dir: Path, epochs: int) -> dict:
    return {
        "model": {"name": "unet", "encoder": "resnet18", "decoder_channels": [128, 64, 32, 16, 16]},
        "data": {"layout": "folder", "root": str(data_dir), "crop_size": [96, 128], "scale_range": [0.75, 1.25],
                 "workers": 0},
        "loss": {"ce": 1.0, "dice": 0.5},
        "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 1e-4},
        "schedule": {"name": "poly", "warmup_iters": 10},
        "train": {"epochs": epochs, "batch_size": 8, "out_dir": str(run_dir), "val_every": 2, "seed": 0},
    }


def run_demo(out: Path, epochs: int = 12, progress: bool = True) -> dict[str, Path]:
    started = time.time()
    data_dir, run_dir = out / "data", out / "run"
    print(f"generating the shapes dataset in {data_dir} ...", flush=True)
    make_shapes_dataset(data_dir, num_train=96, num_val=16)
    print(f"training a U-Net (ResNet-18 encoder, from scratch) for {epochs} epochs ...", flush=True)
    train(config_from_dict(demo_config(data_dir, run_dir, epochs)), progress=progress)
    model = pixelseg.load(run_dir / "best.pt")
    result = evaluate(model, open_dataset("folder", data_dir, "val"), progress=progress, examples=4)
    eval_paths = result.save(run_dir / "eval_val", model.classes, {"split": "val"})
    print("\n" + result.table())
    summary = predict_files(model, [data_dir / "images" / "val"], out / "predictions", progress=progress)
    print(f"\ndemo finished in {time.time() - started:.0f} s")
    print(f"  report:      {eval_paths['metrics']}")
    print(f"  plots:       {eval_paths['examples']}, {eval_paths['confusion']}, {eval_paths['class_iou']}")
    print(f"  training:    {run_dir / 'log.csv'}, curve {run_dir / 'curve.png'}")
    print(f"  pictures:    {out / 'predictions'} ({len(summary.written) // 3} images: labels, colour, overlay)")
    print(f"  checkpoint:  {run_dir / 'best.pt'} (pixelseg.load it, or `pixelseg predict` with it)")
    return {"run": run_dir, "predictions": out / "predictions", **eval_paths}
