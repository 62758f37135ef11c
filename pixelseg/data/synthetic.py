"""A small generated dataset (shapes on textured backgrounds) for the demo and the tests.

Written in the ``folder`` layout: ``images/{train,val}``, ``masks/{train,val}``, ``classes.json``.
Each shape has a one-pixel ignore outline (value 255), as in Pascal VOC.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from pixelseg.data.classes import IGNORE_INDEX, ClassInfo
from pixelseg.io import write_image, write_text

SHAPES = ClassInfo(names=["background", "disc", "square", "triangle"],
                   palette=[(0, 0, 0), (230, 80, 60), (60, 170, 230), (240, 200, 40)])


def _draw(canvas: np.ndarray, mask: np.ndarray, kind: int, rng: np.random.Generator) -> None:
    height, width = mask.shape
    size = int(rng.integers(max(6, min(height, width) // 8), max(8, min(height, width) // 3)))
    cx, cy = int(rng.integers(size, width - size)), int(rng.integers(size, height - size))
    base = np.asarray(SHAPES.palette[kind], dtype=np.float64)
    colour = tuple(int(v) for v in np.clip(base + rng.normal(0, 25, 3), 0, 255))
    layer = np.zeros_like(mask)
    if kind == 1:
        cv2.circle(layer, (cx, cy), size, 1, -1)
    elif kind == 2:
        cv2.rectangle(layer, (cx - size, cy - size), (cx + size, cy + size), 1, -1)
    else:
        points = np.array([[cx, cy - size], [cx - size, cy + size], [cx + size, cy + size]], dtype=np.int32)
        cv2.fillPoly(layer, [points], 1)
    outline = cv2.dilate(layer, np.ones((3, 3), np.uint8)) - layer
    canvas[layer == 1] = colour
    mask[outline == 1] = IGNORE_INDEX
    mask[layer == 1] = kind


def make_shapes_sample(rng: np.random.Generator, height: int = 96, width: int = 128,
                       max_shapes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One (image, mask) pair."""
    y, x = np.mgrid[0:height, 0:width]
    tint = rng.uniform(60, 160, 3)
    gradient = (x / width)[..., None] * rng.uniform(-40, 40, 3) + (y / height)[..., None] * rng.uniform(-40, 40, 3)
    canvas = np.clip(tint + gradient + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        _draw(canvas, mask, int(rng.integers(1, SHAPES.num_classes)), rng)
    canvas = cv2.GaussianBlur(canvas, (3, 3), 0)
    return canvas, mask


def make_shapes_dataset(root: str | Path, num_train: int = 64, num_val: int = 16, height: int = 96,
                        width: int = 128, seed: int = 0) -> Path:
    """Write the shapes dataset under ``root`` (folder layout) and return ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", num_train), ("val", num_val)):
        for index in range(count):
            image, mask = make_shapes_sample(rng, height, width)
            write_image(root / "images" / split / f"{split}_{index:04d}.png", image)
            write_image(root / "masks" / split / f"{split}_{index:04d}.png", mask)
    write_text(root / "classes.json", json.dumps(SHAPES.to_dict(), indent=2))
    return root
